"""Read the Combined, Z and Normal passes of a rendered frame as numpy arrays.

Python cannot read the Render Result's pixels, and in background mode (bpy from PyPI, a
render farm, CI) the compositor's Viewer node image stays an empty 256x256 placeholder in
Blender 4.5. What works everywhere is a compositor File Output node: it writes each pass to
a file during the render and ``bpy.data.images.load`` reads it back. Z and Normal go out as
full-float OpenEXR (exact values). Combined goes out as an 8-bit PNG, which the node writes
through the scene's view transform (AgX, Filmic, looks, exposure): the daemon gets the frame
as the artist sees it in the render window, not the raw linear light. ``PassCapture`` adds
that node for the length of a realify run and puts the scene back as it found it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import bpy
import numpy as np

# Cycles and EEVEE write 1e10 into the Z pass where no surface was hit; the wire contract
# marks sky with inf, which the daemon's preprocessing understands.
SKY_DEPTH = 1.0e9
NODE_NAME = "coarse2real capture"
# File Output slot -> (render-layer output, file written). "Linear" (Combined in scene-linear
# light, as Blender's own EXRs hold it) is written only for a run that keeps the passes.
PASS_FILES = {"Image": ("Image", "png"), "Depth": ("Depth", "exr"), "Normal": ("Normal", "exr")}
LINEAR_FILE = {"Linear": ("Image", "exr")}


@dataclass
class CapturedFrame:
    """One rendered frame as the wire wants it: row 0 at the top."""

    frame: int  # the scene frame number
    color: np.ndarray  # (H, W, 3) uint8 sRGB, through the scene's view transform
    depth: np.ndarray  # (H, W) float32 view-axis distance, inf for sky
    normals: np.ndarray  # (H, W, 3) float32 camera-space unit normals, 0 for sky
    passes: dict[str, np.ndarray] | None = None  # the render passes as Blender wrote them (PassCapture keep_passes)


def read_image_pixels(path: str) -> np.ndarray:
    """An image file as (H, W, 4) float32, row 0 at the top; the datablock is removed again."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1]


def world_to_camera_normals(normals: np.ndarray, camera: bpy.types.Object) -> np.ndarray:
    """World-space normals (Cycles' Normal pass) into the camera's frame (x right, y up, z back).

    Camera space is what the daemon prefers: the same surface keeps its colour when only the
    camera moves, so the model sees geometry, not camera motion.
    """
    rotation = np.array(camera.matrix_world.to_3x3().normalized(), dtype=np.float32)
    return normals @ rotation  # row vectors: n_cam = R^T n_world


class PassCapture:
    """Enables the passes and a File Output node on ``scene``; ``close`` puts the scene back as it was.

    The run renders stills without Write Image (render_job.py), so nothing goes to the artist's
    render output. The current frame, which the run steps through, is put back too. Nodes Blender
    adds when compositing is switched on (Composite, Render Layers) are removed again: a scene
    that had no compositor tree keeps none in use, and no nodes.
    """

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, keep_passes: bool = False):
        self.scene = scene
        self.view_layer = view_layer
        self.files = PASS_FILES | LINEAR_FILE if keep_passes else PASS_FILES
        self.folder = tempfile.mkdtemp(prefix="c2r-passes-")
        render = scene.render
        self._saved = [
            (owner, attribute, getattr(owner, attribute))
            for owner, attribute in (
                (scene, "frame_current"), (scene, "use_nodes"), (render, "use_compositing"), (render, "use_sequencer"),
                (view_layer, "use_pass_z"), (view_layer, "use_pass_normal"),
            )
        ]  # fmt: skip
        self._nodes_before = {node.name for node in scene.node_tree.nodes} if scene.node_tree else set()
        view_layer.use_pass_z = True
        view_layer.use_pass_normal = True
        scene.use_nodes = True
        render.use_compositing = True  # the File Output node only runs with it
        render.use_sequencer = False  # with strips in the scene's sequencer, they would be rendered instead
        tree = scene.node_tree
        layers = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers" and n.scene == scene
                       and n.layer == view_layer.name), None)  # fmt: skip
        if layers is None:  # (a Render Layers node may show another scene's layer: not this one's passes)
            layers = tree.nodes.new("CompositorNodeRLayers")
            layers.scene, layers.layer = scene, view_layer.name
        node = tree.nodes.new("CompositorNodeOutputFile")
        node.name = node.label = NODE_NAME
        node.base_path = self.folder + os.sep
        node.format.file_format = "OPEN_EXR"
        node.format.color_depth = "32"
        node.format.exr_codec = "NONE"
        node.file_slots.clear()
        for name, (output, _) in self.files.items():
            node.file_slots.new(name)
            tree.links.new(layers.outputs[output], node.inputs[name])
        display = node.file_slots["Image"]
        display.use_node_format = False
        display.format.file_format, display.format.color_depth, display.format.color_mode = "PNG", "8", "RGB"

    def read(self, frame: int) -> CapturedFrame:
        """The passes the File Output node wrote for ``frame``; the files are deleted after reading."""
        planes = {}
        for name, (_, extension) in self.files.items():
            path = os.path.join(self.folder, f"{name}{frame:04d}.{extension}")
            if not os.path.exists(path):
                raise RuntimeError(
                    f"Blender rendered frame {frame} but wrote no {name} pass for it: use Cycles or EEVEE "
                    f"(Render Properties > Render Engine), which produce Z and Normal passes"
                )
            planes[name] = read_image_pixels(path)
            os.remove(path)
        raw_depth, raw_normals = planes["Depth"][..., 0], planes["Normal"][..., :3]
        depth = raw_depth.copy()
        sky = ~np.isfinite(depth) | (depth >= SKY_DEPTH)
        depth[sky] = np.inf
        normals = world_to_camera_normals(raw_normals, self.scene.camera)
        normals[sky] = 0.0
        color = np.round(planes["Image"][..., :3] * 255.0).astype(np.uint8)  # 8-bit pixels read back as code / 255
        passes = {"Combined": planes["Linear"], "Depth": raw_depth, "Normal": raw_normals} if "Linear" in planes else None
        return CapturedFrame(frame, color, depth, np.ascontiguousarray(normals), passes)

    def close(self) -> None:
        tree = self.scene.node_tree
        if tree is not None:
            for node in [n for n in tree.nodes if n.name not in self._nodes_before]:
                tree.nodes.remove(node)
        for owner, attribute, value in self._saved:
            setattr(owner, attribute, value)
        shutil.rmtree(self.folder, ignore_errors=True)
