"""The Unreal plugin's own logic, against ``UnrealModuleDouble`` (no engine here) and real files."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from unreal_double import LevelSequenceDouble, install_unreal_double
from unreal_mrq_layout import mrq_frame, synthetic_frame, write_exr, write_mrq_multilayer

PLUGIN = Path(__file__).resolve().parents[1] / "engine_plugins" / "unreal" / "Coarse2Real"
sys.path.insert(0, str(PLUGIN / "Content" / "Python"))

from coarse2real_unreal import conventions, dependencies, exr_gbuffer, mrq_files  # noqa: E402


@pytest.fixture
def unreal():
    """A fresh ``unreal`` double, and the plugin's editor modules imported against it."""
    yield install_unreal_double()
    del sys.modules["unreal"]


def editor_module(name: str):
    return importlib.import_module(f"coarse2real_unreal.{name}")


# ---------------------------------------------------------------- MRQ job and materials


def test_mrq_job_writes_one_multilayer_exr_per_frame_with_depth_and_normal_passes(unreal):
    materials = editor_module("unreal_materials").ensure_pass_materials()
    sequence = LevelSequenceDouble("Street", 1001, 1049)
    queue, job = editor_module("unreal_mrq").build_job(sequence, "/Game/Maps/Street.Street", "/out/coarse", materials, (1280, 720))

    assert queue.jobs == [job]
    assert job.props["sequence"].args == ("/Game/Cinematics/Street.Street",)
    settings = {type(s).__name__: s.props for s in job.configuration.settings}
    assert set(settings) == {"MoviePipelineOutputSetting", "MoviePipelineDeferredPassBase", "MoviePipelineImageSequenceOutput_EXR"}
    output = settings["MoviePipelineOutputSetting"]
    assert output["file_name_format"] == "{sequence_name}.{frame_number}"
    assert output["zero_pad_frame_numbers"] == 4
    assert output["output_directory"].args == ("/out/coarse",)
    assert output["output_resolution"].args == (1280, 720)
    exr = settings["MoviePipelineImageSequenceOutput_EXR"]
    assert exr == {"multilayer": True, "compression": "EXRCompressionFormat.ZIP"}
    deferred = settings["MoviePipelineDeferredPassBase"]
    assert deferred["disable_multisample_effects"] is True
    passes = deferred["additional_post_process_materials"]
    assert [p.props["material"] for p in passes] == [materials["C2R_SceneDepth"], materials["C2R_ViewNormal"]]
    assert all(p.props["enabled"] and p.props["high_precision_output"] and p.props["use_lossless_compression"] for p in passes)


def test_default_8bit_outputs_are_removed_from_the_job(unreal):
    original = unreal.MoviePipelineExecutorJob.__init__

    def job_with_default_jpg(job):
        original(job)
        job.configuration.find_or_add_setting_by_class(unreal.MoviePipelineImageSequenceOutput_JPG)

    unreal.MoviePipelineExecutorJob.__init__ = job_with_default_jpg
    try:
        _, job = editor_module("unreal_mrq").build_job(LevelSequenceDouble("S", 0, 9), "/Game/M", "/o", {}, None)
    finally:
        unreal.MoviePipelineExecutorJob.__init__ = original
    names = [type(s).__name__ for s in job.configuration.settings]
    assert "MoviePipelineImageSequenceOutput_JPG" not in names and "MoviePipelineImageSequenceOutput_EXR" in names


def test_pass_materials_are_post_process_graphs_created_once(unreal):
    materials_module = editor_module("unreal_materials")
    first = materials_module.ensure_pass_materials()
    second = materials_module.ensure_pass_materials()
    assert first == second and len(unreal.registry.assets) == 2  # the second call loads, never re-creates

    depth, normal = first["C2R_SceneDepth"], first["C2R_ViewNormal"]
    for material in (depth, normal):
        assert material.props["material_domain"] == "MaterialDomain.MD_POST_PROCESS"
        assert material.props["blendable_location"] == "BlendableLocation.BL_SCENE_COLOR_AFTER_TONEMAPPING"
        assert material.compiled and material in unreal.registry.saved
        assert material.links[-1][2] == "MaterialProperty.MP_EMISSIVE_COLOR"
    assert depth.expressions[0].props["scene_texture_id"] == "SceneTextureId.PPI_SCENE_DEPTH"
    kinds = [type(e).__name__ for e in normal.expressions]
    assert kinds == ["MaterialExpressionSceneTexture", "MaterialExpressionComponentMask", "MaterialExpressionTransform",
                     "MaterialExpressionMultiply", "MaterialExpressionAdd"]  # fmt: skip
    transform = normal.expressions[2].props
    assert transform["transform_source_type"].endswith("TRANSFORMSOURCE_WORLD") and transform["transform_type"].endswith("TRANSFORM_VIEW")
    assert normal.expressions[3].props["const_b"] == 0.5 and normal.expressions[4].props["const_b"] == 0.5


def test_menu_entries_run_functions_that_exist(unreal):
    editor_module("unreal_menus").register()
    submenu = unreal.tool_menus.menus["LevelEditor.MainMenu"].submenus["Coarse2Real"]
    labels = [entry.props["label"] for _, entry in submenu.entries]
    assert labels == ["Realify Level Sequence", "Realify Viewport", "Cancel Realify", "Install Dependencies"]
    toolbar = unreal.tool_menus.menus["LevelEditor.LevelEditorToolBar.PlayToolBar"]
    assert [e.props["label"] for _, e in toolbar.entries] == ["Realify"]
    actions = editor_module("unreal_actions")
    for _, entry in submenu.entries + toolbar.entries:
        kind, command = entry.props["command"]
        assert kind == "ToolMenuStringCommandType.PYTHON"
        function = command.rsplit("a.", 1)[1].removesuffix("()")
        assert callable(getattr(actions, function)), command


def test_realify_without_a_sequence_says_what_to_do(unreal):
    assert editor_module("unreal_actions").realify_current_sequence() is None
    assert any(kind == "dialog" and "Open a Level Sequence" in message for kind, message in unreal.logs)


# ---------------------------------------------------------------- file names -> frames


def test_mrq_file_names_map_to_frames_of_one_sequence():
    parse = mrq_files.parse_frame_file
    assert parse("/o/Street.1001.exr", "Street") == mrq_files.FrameFile("/o/Street.1001.exr", "Street", 1001, "", "exr")
    assert parse("/o/Street.FinalImage.0007.exr", "Street").render_pass == "FinalImage"
    assert parse("/o/Street.-003.exr", "Street").frame == -3  # handle frames before the range start
    assert parse("/o/StreetB.1001.exr", "Street") is None
    assert parse("/o/Street.1001.json", "Street") is None
    assert mrq_files.frame_index(1004, 1001) == 3
    with pytest.raises(ValueError, match="before the render range's first frame 1001"):
        mrq_files.frame_index(1000, 1001)


def test_watcher_hands_out_finished_frames_in_order_and_reports_holes(tmp_path):
    def put(frame, data=b"x" * 10):
        (tmp_path / f"Shot.{frame:04d}.exr").write_bytes(data)

    watcher = mrq_files.OutputFolderWatcher(str(tmp_path), "Shot", 1001)
    put(1001)
    assert watcher.poll() == []  # just seen: MRQ may still be writing it
    assert [i for i, _ in watcher.poll()] == [0]  # same size on the next poll: finished
    put(1003)
    assert watcher.poll() == []  # 1002 is missing: 1003 must wait
    put(1002)
    assert [i for i, _ in watcher.poll()] == [1]  # a later frame exists, so 1002 is complete; 1003 just seen
    assert [i for i, _ in watcher.poll(final=True)] == [2]
    assert watcher.poll(final=True) == []
    put(1005)
    with pytest.raises(ValueError, match="frame 1004 of 'Shot' is missing"):
        watcher.check_nothing_left()


def test_watcher_waits_for_every_pass_of_a_per_pass_layout(tmp_path):
    watcher = mrq_files.OutputFolderWatcher(str(tmp_path), "Viewport", 0, ("FinalImage", "C2R_SceneDepth"))
    (tmp_path / "Viewport.FinalImage.0000.exr").write_bytes(b"x")
    assert watcher.poll(final=True) == []
    (tmp_path / "Viewport.C2R_SceneDepth.0000.exr").write_bytes(b"x")
    [(index, files)] = watcher.poll(final=True)
    assert index == 0 and set(files) == {"FinalImage", "C2R_SceneDepth"}


def test_remove_frames_deletes_only_that_sequences_frames(tmp_path):
    for name in ("Shot.0001.exr", "Shot.0002.png", "Other.0001.exr", "Shot.log"):
        (tmp_path / name).write_bytes(b"x")
    assert mrq_files.remove_frames(str(tmp_path), "Shot") == 2
    assert sorted(os.listdir(tmp_path)) == ["Other.0001.exr", "Shot.log"]


# ---------------------------------------------------------------- units, axes, layers


def test_scene_depth_centimetres_become_metres_and_sky_becomes_inf():
    depth = np.array([[150.0, 2.5e4], [3.0e38, np.nan]], np.float32)
    metres = conventions.scene_depth_to_metres(depth)
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres[0], [1.5, 250.0])
    assert np.isinf(metres[1]).all()
    half = conventions.scene_depth_to_metres(np.array([[65504.0, 1000.0]], np.float16))  # saturated 16-bit pass
    assert np.isinf(half[0, 0]) and half[0, 1] == pytest.approx(10.0)


def test_view_normals_flip_to_opengl_camera_space():
    encoded = np.array([[[0.5, 0.5, 0.0], [1.0, 0.5, 0.5], [0.0, 0.0, 0.0]]], np.float32)  # facing camera, +X, background
    camera = conventions.encoded_view_normals_to_camera(encoded).astype(np.float32)
    np.testing.assert_allclose(camera[0, 0], [0, 0, 1], atol=1e-3)  # toward the viewer is +Z in OpenGL
    np.testing.assert_allclose(camera[0, 1], [1, 0, 0], atol=1e-3)
    assert np.linalg.norm(camera[0, 2]) == pytest.approx(1.0, abs=1e-3)  # (-1,-1,1) normalised, never NaN
    assert np.isfinite(camera).all()


def test_multilayer_exr_layers_are_selected_by_mrq_pass_name(tmp_path):
    color, depth, normals = synthetic_frame(3, 16, 24, np.random.default_rng(0))
    path = write_mrq_multilayer(str(tmp_path), "Shot", 1001, mrq_frame(color, depth, normals, "C2R_SceneDepth", "C2R_ViewNormal"))
    frame = exr_gbuffer.read_frame({"": path})
    assert frame.color.dtype == np.float16 and frame.color.shape == (16, 24, 3)
    np.testing.assert_allclose(frame.color.astype(np.float32), color, atol=2e-3)
    assert np.isinf(frame.depth[:2]).all()  # the sky band
    np.testing.assert_allclose(frame.depth[2:], depth[2:] / 100.0, rtol=1e-6)
    np.testing.assert_allclose(frame.normals.astype(np.float32)[5, 5], [0, 0, 1], atol=1e-3)


def test_missing_layer_error_names_the_layers_the_file_has(tmp_path):
    color, depth, normals = synthetic_frame(0, 8, 8, np.random.default_rng(0))
    path = write_mrq_multilayer(str(tmp_path), "Shot", 0, mrq_frame(color, depth, normals, "MovieRenderQueue_WorldDepth", "C2R_ViewNormal"))
    frame = exr_gbuffer.read_frame({"": path})
    assert frame.depth is None and frame.normals is not None  # an absent pass is simply not sent
    with pytest.raises(ValueError, match=r"no channel\(s\) \['C2R_SceneDepth.R'\].*MovieRenderQueue_WorldDepth"):
        exr_gbuffer.select_layer(exr_gbuffer.read_channels(path), "C2R_SceneDepth", "R", path)


def test_per_pass_files_read_like_the_viewport_capture_writes_them(tmp_path):
    color, depth, normals = synthetic_frame(1, 8, 12, np.random.default_rng(1))
    files = {}
    for pass_name, rgb in (("FinalImage", color), ("C2R_SceneDepth", np.repeat(depth[..., None], 3, -1)), ("C2R_ViewNormal", normals)):
        files[pass_name] = str(tmp_path / f"Viewport.{pass_name}.0000.exr")
        write_exr(files[pass_name], {c: np.minimum(rgb[..., i], 65504).astype(np.float16) for i, c in enumerate("RGB")})
    frame = exr_gbuffer.read_frame(files)
    assert frame.color.shape == (8, 12, 3) and frame.depth.shape == (8, 12) and frame.normals.shape == (8, 12, 3)
    assert np.isinf(frame.depth[0]).all()  # sky saturates a half channel at 65504: still sky


# ---------------------------------------------------------------- dependency installer


def test_installer_targets_the_plugins_platform_site_packages_and_reports_pip_failures(tmp_path):
    target = dependencies.platform_site_packages(str(tmp_path), "win32")
    assert target == os.path.join(str(tmp_path), "Content", "Python", "Win64", "Lib", "site-packages")
    assert dependencies.coarse2real_source(str(PLUGIN)) == str(PLUGIN.parents[2])  # the checkout, not PyPI
    assert dependencies.coarse2real_source(str(tmp_path)) == "coarse2real"
    command = dependencies.pip_command("/engine/python", target, "coarse2real")
    assert command[:4] == ["/engine/python", "-m", "pip", "install"] and command[command.index("--target") + 1] == target

    class PipRunDouble:
        def __call__(self, command, **kwargs):
            self.command = command
            return type("Done", (), {"returncode": 1, "stderr": "No matching distribution found for grpcio"})()

    with pytest.raises(RuntimeError, match="(?s)pip failed \\(exit 1\\).*No matching distribution.*proxy"):
        dependencies.install("/engine/python", str(tmp_path), run=PipRunDouble())


def test_missing_dependency_message_names_packages_and_the_menu_entry():
    message = dependencies.missing_message(["grpc", "OpenEXR"])
    assert "OpenEXR, grpcio" in message and "Coarse2Real > Install Dependencies" in message
    assert dependencies.missing_modules() == []  # this venv has everything the plugin imports
