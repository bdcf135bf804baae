"""Results inside the editor: image sequences as Img Media sources, each in a Media Player, side by side.

Every asset lives under ``/Game/Coarse2Real/Review`` with a name derived from the sequence, and a second
run reuses (and repoints) what the first created instead of failing on an existing asset. APIs (Python
API reference, UE 5.4-5.7): ``ImgMediaSource.set_sequence_path`` / ``frame_rate_override`` (ImgMedia
plugin, class/ImgMediaSource), ``MediaPlayer.open_source`` / ``set_looping`` / ``play_on_open`` (MediaAssets,
class/MediaPlayer), factories ``ImgMediaSourceFactoryNew`` (ImgMediaFactory) and ``MediaPlayerFactoryNew``
(MediaAssetsEditor), ``AssetEditorSubsystem.open_editor_for_assets``: a Media Player asset opens in the Media
Player editor, which plays its source.
"""

from __future__ import annotations

import unreal

REVIEW_FOLDER = "/Game/Coarse2Real/Review"


def review_asset(name: str, asset_class, factory_class, folder: str = REVIEW_FOLDER):
    """``folder/name`` as an ``asset_class``: the existing one if there is one, else a new one.

    An asset of another class under that name (a user's, or an older plugin's) is replaced.
    """
    path = f"{folder}/{name}"
    library = unreal.EditorAssetLibrary
    if library.does_asset_exist(path):
        existing = library.load_asset(path)
        if isinstance(existing, asset_class):
            return existing
        library.delete_asset(path)
    return unreal.AssetToolsHelpers.get_asset_tools().create_asset(name, folder, asset_class, factory_class())


def image_sequence_player(asset_name: str, folder: str, fps: float):
    """A Media Player asset playing the image sequence in ``folder`` through an Img Media source."""
    source = review_asset(f"{asset_name}_Frames", unreal.ImgMediaSource, unreal.ImgMediaSourceFactoryNew)
    source.set_sequence_path(folder)
    source.set_editor_property("frame_rate_override", unreal.FrameRate(int(round(fps)), 1))
    player = review_asset(f"{asset_name}_Player", unreal.MediaPlayer, unreal.MediaPlayerFactoryNew)
    player.set_editor_property("play_on_open", True)
    player.set_looping(True)
    for asset in (source, player):
        unreal.EditorAssetLibrary.save_loaded_asset(asset)
    if not player.open_source(source):
        unreal.log_warning(f"Coarse2Real: the Media Player could not open {folder}; open {REVIEW_FOLDER}/{asset_name}_Frames by hand")
    return player


def review_side_by_side(name: str, folders: dict[str, str], fps: float) -> list:
    """One player per {label: folder} (e.g. coarse, realified), opened together."""
    players = [image_sequence_player(f"{name}_{label}", folder, fps) for label, folder in folders.items()]
    unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).open_editor_for_assets(players)
    return players
