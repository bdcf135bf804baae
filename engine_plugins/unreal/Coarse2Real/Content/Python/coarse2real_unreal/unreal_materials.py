"""The two post-process materials the passes need, built from Python on first use.

The plugin ships no binary .uasset (none can be authored outside the editor), so the
materials are created under /Game/Coarse2Real with MaterialEditingLibrary the first time
they are needed and saved, then reused:

* C2R_SceneDepth: SceneTexture:SceneDepth (cm) straight to Emissive.
* C2R_ViewNormal: SceneTexture:WorldNormal, transformed world -> view, written as n*0.5+0.5.

Both are Post Process domain materials blended after tonemapping (``BL_SCENE_COLOR_AFTER_TONEMAPPING``,
the UE 5 name), as MRQ asks of its additional post-process passes.
"""

from __future__ import annotations

import unreal

from .exr_gbuffer import DEPTH_PASS, NORMAL_PASS

MATERIAL_FOLDER = "/Game/Coarse2Real"


def _scene_texture(material, texture_id, x: int):
    node = unreal.MaterialEditingLibrary.create_material_expression(material, unreal.MaterialExpressionSceneTexture, x, 0)
    node.set_editor_property("scene_texture_id", texture_id)
    return node


def _mask(material, source, channels: str, x: int):
    node = unreal.MaterialEditingLibrary.create_material_expression(material, unreal.MaterialExpressionComponentMask, x, 0)
    for channel in "rgba":
        node.set_editor_property(channel, channel in channels)
    unreal.MaterialEditingLibrary.connect_material_expressions(source, "Color", node, "")
    return node


def _build_depth(material) -> None:
    depth = _mask(material, _scene_texture(material, unreal.SceneTextureId.PPI_SCENE_DEPTH, -600), "r", -400)
    unreal.MaterialEditingLibrary.connect_material_property(depth, "", unreal.MaterialProperty.MP_EMISSIVE_COLOR)


def _build_normal(material) -> None:
    library = unreal.MaterialEditingLibrary
    world = _mask(material, _scene_texture(material, unreal.SceneTextureId.PPI_WORLD_NORMAL, -1000), "rgb", -800)
    view = library.create_material_expression(material, unreal.MaterialExpressionTransform, -600, 0)
    view.set_editor_property("transform_source_type", unreal.MaterialVectorCoordTransformSource.TRANSFORMSOURCE_WORLD)
    view.set_editor_property("transform_type", unreal.MaterialVectorCoordTransform.TRANSFORM_VIEW)
    library.connect_material_expressions(world, "", view, "")
    half = library.create_material_expression(material, unreal.MaterialExpressionMultiply, -400, 0)
    half.set_editor_property("const_b", 0.5)
    library.connect_material_expressions(view, "", half, "A")
    biased = library.create_material_expression(material, unreal.MaterialExpressionAdd, -200, 0)
    biased.set_editor_property("const_b", 0.5)
    library.connect_material_expressions(half, "", biased, "A")
    library.connect_material_property(biased, "", unreal.MaterialProperty.MP_EMISSIVE_COLOR)


BUILDERS = {DEPTH_PASS: _build_depth, NORMAL_PASS: _build_normal}


def ensure_pass_material(name: str):
    """The saved material ``/Game/Coarse2Real/<name>``, created the first time."""
    path = f"{MATERIAL_FOLDER}/{name}"
    if unreal.EditorAssetLibrary.does_asset_exist(path):
        return unreal.EditorAssetLibrary.load_asset(path)
    tools = unreal.AssetToolsHelpers.get_asset_tools()
    material = tools.create_asset(name, MATERIAL_FOLDER, unreal.Material, unreal.MaterialFactoryNew())
    material.set_editor_property("material_domain", unreal.MaterialDomain.MD_POST_PROCESS)
    material.set_editor_property("blendable_location", unreal.BlendableLocation.BL_SCENE_COLOR_AFTER_TONEMAPPING)
    BUILDERS[name](material)
    unreal.MaterialEditingLibrary.recompile_material(material)
    unreal.EditorAssetLibrary.save_loaded_asset(material)
    unreal.log(f"Coarse2Real: created the post-process material {path}")
    return material


def ensure_pass_materials() -> dict:
    """{pass name: material} for every pass the plugin renders besides colour."""
    return {name: ensure_pass_material(name) for name in BUILDERS}
