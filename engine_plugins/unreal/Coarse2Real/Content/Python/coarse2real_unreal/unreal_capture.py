"""Realify what the level viewport sees: a SceneCapture2D at the viewport camera, one frame per tick.

Each frame is captured three times into a half-float render target, once plain (colour) and once
through each pass material (depth, view normal), and exported as ``<stem>.<pass>.<frame>.exr`` with
unnamed RGBA channels, the per-pass layout ``mrq_files`` and ``exr_gbuffer`` read. The target must be
``RTF_RGBA16F``: ``RenderingLibrary.export_render_target`` writes EXR only for that format and PNG bytes
for every other one, whatever the file name says (``UKismetRenderingLibrary::ExportRenderTarget``,
Engine/Source/Runtime/Engine/Private/KismetRenderingLibrary.cpp, UE 5.x: ``if (RenderTargetFormat ==
RTF_RGBA16f) ExportRenderTarget2DAsEXR else ExportRenderTarget2DAsPNG``). Half floats hold SceneDepth to
65504 cm (655 m); farther reads as sky. With a Level Sequence open in Sequencer the capture steps through
its playback range; otherwise it captures the current view once.
"""

from __future__ import annotations

import os
from typing import Iterator

import unreal

from .exr_gbuffer import DEPTH_PASS, NORMAL_PASS

COLOR_FILE_PASS = "FinalImage"
CAPTURE_PASSES = (COLOR_FILE_PASS, DEPTH_PASS, NORMAL_PASS)


def _blendables(material):
    if material is None:
        return unreal.WeightedBlendables([])
    return unreal.WeightedBlendables([unreal.WeightedBlendable(1.0, material)])


def capture_frames(folder: str, stem: str, frames: list[int], size: tuple[int, int], pass_materials: dict, step=None) -> Iterator[int]:
    """Write every pass of each frame number in ``frames``, yielding after each frame (one per editor tick).

    ``step(frame)`` poses the scene first. Closing the generator early (cancel) destroys the capture actor.
    """
    editor = unreal.get_editor_subsystem(unreal.UnrealEditorSubsystem)
    world = editor.get_editor_world()
    location, rotation = editor.get_level_viewport_camera_info()
    actors = unreal.get_editor_subsystem(unreal.EditorActorSubsystem)
    actor = actors.spawn_actor_from_class(unreal.SceneCapture2D, location, rotation)
    try:
        capture = actor.get_editor_property("capture_component2d")
        target = unreal.RenderingLibrary.create_render_target2d(world, size[0], size[1], unreal.TextureRenderTargetFormat.RTF_RGBA16F)
        capture.set_editor_property("texture_target", target)
        capture.set_editor_property("capture_source", unreal.SceneCaptureSource.SCS_FINAL_TONE_CURVE_HDR)
        materials = {COLOR_FILE_PASS: None, DEPTH_PASS: pass_materials[DEPTH_PASS], NORMAL_PASS: pass_materials[NORMAL_PASS]}
        os.makedirs(folder, exist_ok=True)
        for frame in frames:
            if step is not None:
                step(frame)
            for pass_name, material in materials.items():
                settings = capture.get_editor_property("post_process_settings")
                settings.set_editor_property("weighted_blendables", _blendables(material))
                capture.set_editor_property("post_process_settings", settings)
                capture.capture_scene()
                unreal.RenderingLibrary.export_render_target(world, target, folder, f"{stem}.{pass_name}.{frame:04d}.exr")
            yield frame
    finally:
        actors.destroy_actor(actor)


def sequencer_frames():
    """(frame numbers, step function, frames per second) for the sequence open in Sequencer, or one still frame."""
    library = unreal.LevelSequenceEditorBlueprintLibrary
    sequence = library.get_current_level_sequence()
    if sequence is None:
        return [0], None, 24.0
    frames = list(range(sequence.get_playback_start(), sequence.get_playback_end()))
    return frames, library.set_current_time, display_fps(sequence)


def display_fps(sequence) -> float:
    """The sequence's display rate in frames per second (``MovieSceneSequence.get_display_rate() -> FrameRate``)."""
    rate = sequence.get_display_rate()
    return rate.numerator / rate.denominator
