"""Coarse and realified frames as Img Media sources, opened together for side-by-side review."""

from __future__ import annotations

import unreal

REVIEW_FOLDER = "/Game/Coarse2Real/Review"


def image_sequence_source(asset_name: str, folder: str, fps: float = 24.0):
    """An Img Media source asset playing the image sequence in ``folder``."""
    tools = unreal.AssetToolsHelpers.get_asset_tools()
    factory_class = getattr(unreal, "ImgMediaSourceFactoryNew", None)
    source = tools.create_asset(asset_name, REVIEW_FOLDER, unreal.ImgMediaSource, factory_class() if factory_class else None)
    source.set_sequence_path(folder)
    source.set_editor_property("frame_rate_override", unreal.FrameRate(int(round(fps)), 1))
    unreal.EditorAssetLibrary.save_loaded_asset(source)
    return source


def review_side_by_side(name: str, coarse_dir: str, results_dir: str, fps: float = 24.0) -> list:
    sources = [image_sequence_source(f"{name}_coarse", coarse_dir, fps), image_sequence_source(f"{name}_realified", results_dir, fps)]
    unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).open_editor_for_assets(sources)
    return sources
