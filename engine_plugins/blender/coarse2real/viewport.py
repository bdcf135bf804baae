"""Realify viewport: a quick low-resolution look at the current 3D view.

Colour comes from a GPU offscreen draw of the view (what the artist sees, in milliseconds).
The offscreen buffer's depth attachment is not exposed to Python, so depth and normals come
from ray casts through the same view and projection matrices, one per pixel of the small
capture (128x72: about 9k casts, some 70 ms). Background Blender (``blender -b``, bpy as a
module) has no GPU drawing at all: ``require_gpu`` says so in words an artist can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix, Vector

NO_GPU_MESSAGE = (
    "Realify viewport needs Blender's GPU drawing, which this Blender does not have (background mode: "
    "`blender -b`, bpy as a Python module, a render farm). Use 'Realify frame range' instead, which renders "
    "with Cycles or EEVEE and works without a display"
)


class NoGpuContext(RuntimeError):
    pass


def require_gpu() -> None:
    if bpy.app.background:
        raise NoGpuContext(NO_GPU_MESSAGE)


@dataclass
class ViewCapture:
    color: np.ndarray  # (H, W, 3) uint8 sRGB, the view as displayed
    depth: np.ndarray  # (H, W) float32 view-axis distance, inf where nothing was hit
    normals: np.ndarray  # (H, W, 3) float32 view-space normals, 0 where nothing was hit


def raycast_planes(depsgraph, view: Matrix, projection: Matrix, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Depth and view-space normals by casting one ray per pixel centre (row 0 at the top)."""
    scene = depsgraph.scene
    unproject = (projection @ view).inverted()
    rotation = view.to_3x3()
    depth = np.full((height, width), np.inf, dtype=np.float32)
    normals = np.zeros((height, width, 3), dtype=np.float32)
    for row in range(height):
        y = 1.0 - 2.0 * (row + 0.5) / height
        for col in range(width):
            x = 2.0 * (col + 0.5) / width - 1.0
            near = unproject @ Vector((x, y, -1.0, 1.0))
            far = unproject @ Vector((x, y, 1.0, 1.0))
            origin = near.xyz / near.w
            direction = (far.xyz / far.w - origin).normalized()
            hit, location, normal, *_ = scene.ray_cast(depsgraph, origin, direction)
            if hit:
                depth[row, col] = -(view @ location).z
                normals[row, col] = (rotation @ normal).normalized()
    return depth, normals


def find_view3d(context):
    """(region, space) of the 3D view to capture: the one in context, else the largest on screen.

    The button also lives in Properties > Render, where the context's own space is not a 3D view.
    """
    if context.space_data is not None and context.space_data.type == "VIEW_3D":
        return context.region, context.space_data
    areas = [a for a in context.screen.areas if a.type == "VIEW_3D"] if context.screen else []
    if not areas:
        raise ValueError("Realify viewport needs a 3D Viewport on screen: open one (Shift+F5) and run it again")
    area = max(areas, key=lambda a: a.width * a.height)
    return next(r for r in area.regions if r.type == "WINDOW"), area.spaces.active


def capture_view(context, width: int = 128) -> ViewCapture:
    """Colour (GPU offscreen) and depth/normals (ray casts) of the 3D view in ``context``."""
    require_gpu()
    import gpu

    region, view3d = find_view3d(context)
    height = max(16, round(width * region.height / region.width))
    region_3d = view3d.region_3d
    view, projection = region_3d.view_matrix.copy(), region_3d.window_matrix.copy()
    offscreen = gpu.types.GPUOffScreen(width, height, format="RGBA16F")
    try:
        offscreen.draw_view3d(context.scene, context.view_layer, view3d, region, view, projection, do_color_management=True)
        buffer = offscreen.texture_color.read()
        buffer.dimensions = width * height * 4
        rgba = np.array(buffer.to_list(), dtype=np.float32).reshape(height, width, 4)
    finally:
        offscreen.free()
    color = np.round(np.clip(rgba[::-1, :, :3], 0.0, 1.0) * 255.0).astype(np.uint8)
    depth, normals = raycast_planes(context.evaluated_depsgraph_get(), view, projection, width, height)
    return ViewCapture(color, depth, normals)
