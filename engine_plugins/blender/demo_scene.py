"""A small procedural scene for the tests and the README's contact sheet.

Moving objects over a ground plane under a sky, seen by a moving camera: every frame differs
in colour, depth and normals, part of each frame is sky (infinite depth), and surfaces face
several directions, so captured passes can be checked for content, not just for shape.
"""

from __future__ import annotations

import math

import bpy


def _material(name: str, rgb: tuple[float, float, float]) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1.0)
    return material


def _add(operator, material: bpy.types.Material, **kwargs) -> bpy.types.Object:
    operator(**kwargs)
    obj = bpy.context.active_object
    obj.data.materials.append(material)
    return obj


def _keyframes(obj: bpy.types.Object, path: str, values: dict[int, tuple[float, ...]]) -> None:
    for frame, value in values.items():
        setattr(obj, path, value)
        obj.keyframe_insert(path, frame=frame)


def build_scene(width: int = 64, height: int = 48, frames: int = 5, samples: int = 4) -> bpy.types.Scene:
    """Reset Blender to an empty file and build the scene; Cycles on the CPU, few samples."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, frames

    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.45, 0.6, 0.9, 1.0)
    scene.world = world

    _add(bpy.ops.mesh.primitive_plane_add, _material("ground", (0.3, 0.45, 0.2)), size=40.0)
    cube = _add(bpy.ops.mesh.primitive_cube_add, _material("cube", (0.8, 0.2, 0.1)), size=1.5)
    _keyframes(cube, "location", {1: (-2.0, 0.0, 0.75), frames: (2.0, 0.5, 0.75)})
    _keyframes(cube, "rotation_euler", {1: (0.0, 0.0, 0.0), frames: (0.0, 0.0, math.radians(90))})
    ball = _add(bpy.ops.mesh.primitive_uv_sphere_add, _material("ball", (0.9, 0.85, 0.2)), radius=0.8, segments=24, ring_count=12)
    _keyframes(ball, "location", {1: (1.5, 2.0, 0.8), frames: (-1.0, 2.5, 2.0)})

    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(50), 0.0, math.radians(30)))
    bpy.context.active_object.data.energy = 3.0

    bpy.ops.object.camera_add()
    camera = bpy.context.active_object
    _keyframes(camera, "location", {1: (0.0, -9.0, 3.0), frames: (3.0, -8.0, 3.5)})
    _keyframes(camera, "rotation_euler", {1: (math.radians(76), 0.0, 0.0), frames: (math.radians(74), 0.0, math.radians(18))})
    scene.camera = camera
    scene.frame_set(1)
    return scene
