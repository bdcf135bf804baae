"""The Unreal plugin's own logic, against ``UnrealModuleDouble`` (no engine here) and real files."""

from __future__ import annotations

import importlib
import json
import os
import re
import stat
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from unreal_double import LevelSequenceDouble, install_unreal_double
from unreal_mrq_layout import mrq_frame, synthetic_frame, write_exr, write_mrq_multilayer

PLUGIN = Path(__file__).resolve().parents[1] / "engine_plugins" / "unreal" / "Coarse2Real"
sys.path.insert(0, str(PLUGIN / "Content" / "Python"))

from coarse2real_unreal import conventions, daemon_info, dependencies, exr_complete, exr_gbuffer, mrq_files, settings  # noqa: E402


@pytest.fixture
def unreal():
    """A fresh ``unreal`` double, and the plugin's editor modules imported against it."""
    yield install_unreal_double()
    del sys.modules["unreal"]


def editor_module(name: str):
    return importlib.import_module(f"coarse2real_unreal.{name}")


# ---------------------------------------------------------------- MRQ job and materials


def build(unreal, version, resolution=(1280, 720)):
    materials = editor_module("unreal_materials").ensure_pass_materials()
    queue = unreal.MoviePipelineQueue()
    sequence = LevelSequenceDouble("Street", 1001, 1049)
    job = editor_module("unreal_mrq").build_job(queue, sequence, "/Game/Maps/Street.Street", "/out/coarse", materials, resolution, version)
    return queue, job, materials


def test_mrq_job_writes_one_multilayer_exr_per_frame_with_depth_and_normal_passes(unreal):
    queue, job, materials = build(unreal, (5, 7))
    assert queue.jobs == [job]
    assert job.props["sequence"] == ("SoftObjectPath", "/Game/Cinematics/Street.Street")
    settings = {type(s).__name__: s.props for s in job.configuration.settings}
    assert set(settings) == {"MoviePipelineOutputSetting", "MoviePipelineDeferredPassBase", "MoviePipelineImageSequenceOutput_EXR"}
    output = settings["MoviePipelineOutputSetting"]
    assert output["file_name_format"] == "{sequence_name}.{frame_number}"
    assert output["zero_pad_frame_numbers"] == 4
    assert output["output_directory"] == ("DirectoryPath", "/out/coarse")
    assert output["output_resolution"] == ("IntPoint", 1280, 720)
    exr = settings["MoviePipelineImageSequenceOutput_EXR"]
    assert exr == {"multilayer": True, "compression": "EXRCompressionFormat.ZIP"}
    deferred = settings["MoviePipelineDeferredPassBase"]
    assert deferred["disable_multisample_effects"] is True
    passes = deferred["additional_post_process_materials"]
    assert [p.props["material"] for p in passes] == [materials["C2R_SceneDepth"], materials["C2R_ViewNormal"]]


@pytest.mark.parametrize(
    "version, expected",
    [((5, 4), {"enabled", "material"}), ((5, 5), {"enabled", "material", "high_precision_output"}),
     ((5, 6), {"enabled", "material", "high_precision_output"}),
     ((5, 7), {"enabled", "material", "high_precision_output", "use_lossless_compression"})],
)  # fmt: skip
def test_pass_precision_flags_are_set_only_where_the_engine_has_them(version, expected):
    """5.4 has no precision fields, 5.5-5.6 no lossless switch: the double refuses a field its version lacks."""
    unreal = install_unreal_double(version)
    try:
        _, job, _ = build(unreal, version)
        deferred = next(s for s in job.configuration.settings if type(s).__name__ == "MoviePipelineDeferredPassBase")
        for entry in deferred.props["additional_post_process_materials"]:
            assert set(entry.props) == expected
            assert all(entry.props[flag] is True for flag in expected - {"material"})
    finally:
        del sys.modules["unreal"]


def test_default_8bit_outputs_are_removed_from_the_job(unreal):
    original = unreal.MoviePipelineExecutorJob.__init__

    def job_with_default_jpg(job):
        original(job)
        job.configuration.find_or_add_setting_by_class(unreal.MoviePipelineImageSequenceOutput_JPG)

    unreal.MoviePipelineExecutorJob.__init__ = job_with_default_jpg
    _, job, _ = build(unreal, (5, 7), None)
    names = [type(s).__name__ for s in job.configuration.settings]
    assert "MoviePipelineImageSequenceOutput_JPG" not in names and "MoviePipelineImageSequenceOutput_EXR" in names


def test_render_goes_through_the_editors_queue_and_leaves_the_users_jobs_as_they_were(unreal):
    subsystem = unreal.get_editor_subsystem(unreal.MoviePipelineQueueSubsystem)
    queue = subsystem.get_queue()
    mine, theirs_off = queue.allocate_new_job(unreal.MoviePipelineExecutorJob), queue.allocate_new_job(unreal.MoviePipelineExecutorJob)
    theirs_off.set_is_enabled(False)
    finished = []
    render = editor_module("unreal_mrq").QueueRender(LevelSequenceDouble("Street", 0, 9), "/Game/M", "/o", {}, None, finished.append)
    assert subsystem.is_rendering() and subsystem.get_active_executor() is render.executor
    assert queue.get_jobs() == [mine, theirs_off, render.job] and render.job.is_enabled()
    assert not mine.is_enabled() and not theirs_off.is_enabled()  # only our job renders
    with pytest.raises(RuntimeError, match="already rendering: wait for that render"):
        editor_module("unreal_mrq").QueueRender(LevelSequenceDouble("Other", 0, 9), "/Game/M", "/o", {}, None, finished.append)
    render.executor.finish(True)
    assert finished == [True] and queue.get_jobs() == [mine, theirs_off]
    assert mine.is_enabled() and not theirs_off.is_enabled()  # re-enabled only what we disabled


def test_ue54_warns_that_passes_are_16_bit_and_newer_engines_do_not():
    for version, warned in (((5, 4), True), ((5, 6), False)):
        unreal = install_unreal_double(version)
        try:
            editor_module("unreal_mrq").QueueRender(LevelSequenceDouble("S", 0, 9), "/Game/M", "/o", {}, None, lambda ok: None)
            assert any(kind == "warning" and "16-bit" in message for kind, message in unreal.logs) is warned
        finally:
            del sys.modules["unreal"]


def test_pass_materials_are_post_process_graphs_created_once(unreal):
    materials_module = editor_module("unreal_materials")
    first = materials_module.ensure_pass_materials()
    second = materials_module.ensure_pass_materials()
    assert first == second and len(unreal.assets) == 2  # the second call loads, never re-creates

    depth, normal = first["C2R_SceneDepth"], first["C2R_ViewNormal"]
    for material in (depth, normal):
        assert material.props["material_domain"] == "MaterialDomain.MD_POST_PROCESS"
        assert material.props["blendable_location"] == "BlendableLocation.BL_SCENE_COLOR_AFTER_TONEMAPPING"
        assert material.compiled and material in unreal.saved
        assert material.links[-1][2] == "MaterialProperty.MP_EMISSIVE_COLOR"
    assert depth.expressions[0].props["scene_texture_id"] == "SceneTextureId.PPI_SCENE_DEPTH"
    kinds = [type(e).__name__ for e in normal.expressions]
    assert kinds == ["MaterialExpressionSceneTexture", "MaterialExpressionComponentMask", "MaterialExpressionTransform",
                     "MaterialExpressionMultiply", "MaterialExpressionAdd"]  # fmt: skip
    transform = normal.expressions[2].props
    assert transform["transform_source_type"].endswith("TRANSFORMSOURCE_WORLD") and transform["transform_type"].endswith("TRANSFORM_VIEW")
    assert normal.expressions[3].props["const_b"] == 0.5 and normal.expressions[4].props["const_b"] == 0.5


def test_menu_entries_run_functions_that_exist_and_the_toolbar_button_shows_progress(unreal):
    menus = editor_module("unreal_menus")
    menus.register()
    submenu = unreal.menus["LevelEditor.MainMenu"].submenus["Coarse2Real"]
    labels = [entry.label for entry in submenu.entries.values()]
    assert labels == ["Realify Level Sequence", "Realify Viewport", "Cancel Realify", "Settings...", "Install Dependencies"]
    toolbar = unreal.menus["LevelEditor.LevelEditorToolBar.PlayToolBar"]
    actions = editor_module("unreal_actions")
    for entry in list(submenu.entries.values()) + list(toolbar.entries.values()):
        kind, command = entry.command
        assert kind == "ToolMenuStringCommandType.PYTHON"
        function = command.rsplit("a.", 1)[1].removesuffix("()")
        assert callable(getattr(actions, function)), command
    menus.show_progress("Street: 4 sent, 2 realified")
    [button] = toolbar.entries.values()  # the same entry, relabelled: never a second button
    assert button.label == "Street: 4 sent, 2 realified" and button.command[1].endswith("a.cancel()")
    menus.show_progress(None)
    [button] = toolbar.entries.values()
    assert button.label == "Realify" and unreal.refreshed == 3


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


def exr_bytes(tmp_path, height=40, width=24) -> bytes:
    """A real multilayer MRQ-layout frame, as bytes."""
    color, depth, normals = synthetic_frame(0, height, width, np.random.default_rng(0))
    path = write_mrq_multilayer(str(tmp_path / "src"), "Src", 0, mrq_frame(color, depth, normals, "C2R_SceneDepth", "C2R_ViewNormal"))
    return Path(path).read_bytes()


def single_part_offset_table(data: bytes) -> int:
    """Where a single-part EXR's offset table starts: after the magic, version and the attribute list's closing NUL."""
    at = 8
    while data[at] != 0:
        at = data.index(b"\0", at) + 1  # attribute name
        at = data.index(b"\0", at) + 1  # type name
        at += 4 + struct.unpack_from("<i", data, at)[0]
    return at + 1


def test_exr_completeness_is_read_from_the_files_own_structure(tmp_path):
    data = exr_bytes(tmp_path)
    path = tmp_path / "f.exr"
    path.write_bytes(data)
    assert exr_complete.exr_is_complete(str(path))
    for cut in range(8, len(data), 37):  # every prefix of the file is a writer caught mid-write
        path.write_bytes(data[:cut])
        assert not exr_complete.exr_is_complete(str(path)), cut
    # OpenEXR's own writer fills the offset table in last: a zero there means "still writing", even at full length.
    offsets_at = single_part_offset_table(data)
    path.write_bytes(data[:offsets_at] + bytes(8) + data[offsets_at + 8 :])
    assert not exr_complete.exr_is_complete(str(path))
    path.write_bytes(b"PNG?" + data[4:])
    with pytest.raises(ValueError, match="is not an OpenEXR file"):
        exr_complete.exr_is_complete(str(path))


def test_watcher_hands_out_frames_in_order_only_once_each_file_is_complete(tmp_path):
    data = exr_bytes(tmp_path)

    def put(frame, part=data):
        (tmp_path / f"Shot.{frame:04d}.exr").write_bytes(part)

    watcher = mrq_files.OutputFolderWatcher(str(tmp_path), "Shot", 1001)
    put(1001, data[: len(data) // 2])
    put(1002)  # MRQ's writer threads finished a later frame first: that says nothing about 1001
    assert watcher.poll() == [] and watcher.poll() == []  # half a file never goes out, however long it sits
    put(1001)
    assert [i for i, _ in watcher.poll()] == [0, 1]
    put(1004)
    assert watcher.poll(final=True) == []  # 1003 is missing: 1004 must wait
    with pytest.raises(ValueError, match="frame 1003 of 'Shot' is missing"):
        watcher.check_nothing_left()
    put(1003)
    assert [i for i, _ in watcher.poll(final=True)] == [2, 3] and watcher.poll(final=True) == []


def test_watcher_waits_for_every_pass_of_a_per_pass_layout(tmp_path):
    data = exr_bytes(tmp_path)
    watcher = mrq_files.OutputFolderWatcher(str(tmp_path), "Viewport", 0, ("FinalImage", "C2R_SceneDepth"))
    (tmp_path / "Viewport.FinalImage.0000.exr").write_bytes(data)
    assert watcher.poll(final=True) == []
    (tmp_path / "Viewport.C2R_SceneDepth.0000.exr").write_bytes(data)
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


def test_installer_targets_the_folder_the_python_plugin_puts_on_sys_path_and_reports_pip_failures(tmp_path):
    # FPythonScriptPlugin::RegisterModulePaths adds <Plugin>/Content/Python/Lib/<UBT platform>/site-packages.
    target = dependencies.platform_site_packages(str(tmp_path), "win32")
    assert target == os.path.join(str(tmp_path), "Content", "Python", "Lib", "Win64", "site-packages")
    assert dependencies.platform_site_packages("/p", "darwin").endswith(os.path.join("Lib", "Mac", "site-packages"))
    assert dependencies.coarse2real_source(str(PLUGIN)) == str(PLUGIN.parents[2])  # the checkout, not PyPI
    assert dependencies.coarse2real_source(str(tmp_path)) == "coarse2real"
    pins = dependencies.pinned_packages(dependencies.declared_requirements(str(PLUGIN), "win32"))
    command = dependencies.pip_command("/engine/python", target, "coarse2real", pins)
    assert command[:4] == ["/engine/python", "-m", "pip", "install"] and command[command.index("--target") + 1] == target
    assert "grpcio==1.85.3" in command and "OpenEXR==3.5.3" in command

    class PipRunDouble:
        def __call__(self, command, **kwargs):
            self.command = command
            return type("Done", (), {"returncode": 1, "stderr": "No matching distribution found for grpcio"})()

    (tmp_path / "Coarse2Real.uplugin").write_text((PLUGIN / "Coarse2Real.uplugin").read_text())
    with pytest.raises(RuntimeError, match="(?s)pip failed \\(exit 1\\).*No matching distribution.*proxy"):
        dependencies.install("/engine/python", str(tmp_path), run=PipRunDouble())


def test_uplugin_declares_hashed_pins_the_engines_pip_installer_accepts():
    """PipInstall.cpp reads PythonRequirements[].Platform/Requirements; strict hash checking is on by default."""
    descriptor = json.loads((PLUGIN / "Coarse2Real.uplugin").read_text())
    by_platform = {group["Platform"]: group["Requirements"] for group in descriptor["PythonRequirements"]}
    assert set(by_platform) == {"Win64", "Mac"}
    client_deps = {"grpcio", "protobuf", "numpy", "OpenEXR", "typing_extensions"}  # typing_extensions: grpcio's own dependency
    for platform, lines in by_platform.items():
        names = set()
        for line in lines:
            assert re.fullmatch(r"[A-Za-z_]+==[0-9.]+( --hash=sha256:[0-9a-f]{64})+", line), (platform, line)
            names.add(line.split("==")[0])
        assert names == client_deps, platform
    from c2r.v1 import coarse2real_pb2, coarse2real_pb2_grpc

    generated_for = {  # the committed c2r.v1 code refuses older runtimes than it was generated for
        "grpcio": coarse2real_pb2_grpc.GRPC_GENERATED_VERSION,
        "protobuf": re.search(r"Protobuf Python Version: ([0-9.]+)", Path(coarse2real_pb2.__file__).read_text())[1],
    }
    for lines in by_platform.values():
        pinned = dict(p.split("==") for p in dependencies.pinned_packages(lines))
        for name, minimum in generated_for.items():
            assert tuple(map(int, pinned[name].split("."))) >= tuple(map(int, minimum.split("."))), (name, pinned[name], minimum)


def test_missing_dependency_message_names_packages_and_the_menu_entry():
    message = dependencies.missing_message(["grpc", "OpenEXR"])
    assert "OpenEXR, grpcio" in message and "Coarse2Real > Install Dependencies" in message
    assert dependencies.missing_modules() == []  # this venv has everything the plugin imports


# ---------------------------------------------------------------- settings, the daemon report, the panel


def test_settings_are_saved_privately_and_come_back_the_same(tmp_path):
    path = str(tmp_path / "Saved" / "Coarse2Real" / "settings.json")
    chosen = settings.RealifySettings(address="10.0.0.5:50051", token="s3cret", prompt="rain", seed=3, window=33, render_size=(640, 360))
    settings.save(chosen, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the file holds the token
    assert settings.load(path) == chosen
    assert settings.load(str(tmp_path / "none.json")) == settings.RealifySettings()
    Path(path).write_text("{not json")
    with pytest.raises(ValueError, match="unreadable.*delete it"):
        settings.load(path)


def test_settings_problems_name_the_value_and_what_to_do():
    assert settings.RealifySettings(address="[::1]:50051").problems() == []  # IPv6 loopback is local: no token needed
    assert settings.RealifySettings(address="localhost:1").is_local()
    remote = settings.RealifySettings(address="gpu-box:50051", model="big", quality="ultra", window=30)
    found = remote.problems(models=["tiny"], qualities=["preview", "final"])
    assert len(found) == 4
    assert "set the token" in found[0] and "'big'" in found[1] and "['tiny']" in found[1]
    assert "'ultra'" in found[2] and "4k+1" in found[3]


def test_daemon_report_lists_what_getinfo_says_and_the_plan_answer():
    from c2r.v1 import coarse2real_pb2 as pb

    info = pb.InfoReply(daemon_version="0.2.0", protocol_major=1, protocol_minor=0, device="cuda:0", models=["tiny", "wan-1.3b"],
                        qualities=["preview", "final"], gpus=[pb.Gpu(name="H100", total_bytes=80 * 1024**3, free_bytes=60 * 1024**3)])  # fmt: skip
    report = daemon_info.describe(info)
    assert report.reachable and report.models == ["tiny", "wan-1.3b"] and report.qualities == ["preview", "final"]
    assert "H100 (60 of 80 GiB free)" in report.text and "cuda:0" in report.text

    subject = daemon_info.plan_subject(settings.RealifySettings(), "Street", 48)  # no size set: what MRQ renders by default
    assert (subject.width, subject.height, subject.frames) == (1920, 1080, 48)
    assert str(daemon_info.plan_subject(settings.RealifySettings(render_size=(1280, 720)), None, 0)) == "no Level Sequence open (one window at 1280x720)"
    fits = pb.PlanReply(fits=True, summary="Fits on your NVIDIA H100 80GB (80 GiB); about 42 s per window.", advice="")
    assert daemon_info.describe_plan(fits, subject) == "For Street (48 frames at 1920x1080): Fits on your NVIDIA H100 80GB (80 GiB); about 42 s per window."
    too_big = pb.PlanReply(fits=False, summary="Does not fit on your RTX 4060 (8 GiB).", advice="Lower the quality to preview.")
    assert daemon_info.describe_plan(too_big, subject).splitlines() == ["For Street (48 frames at 1920x1080): Does not fit on your RTX 4060 (8 GiB).",
                                                                         "Lower the quality to preview."]  # fmt: skip


def test_review_reuses_its_assets_on_a_second_run_and_replaces_a_foreign_one(unreal, tmp_path):
    review = editor_module("unreal_review")
    folders = {"Coarse": str(tmp_path / "c"), "Realified": str(tmp_path / "r")}
    first = review.review_side_by_side("Street", folders, 24.0)
    unreal.assets["/Game/Coarse2Real/Review/Street_Realified_Frames"] = unreal.Material()  # someone else's asset under our name
    second = review.review_side_by_side("Street", {**folders, "Realified": str(tmp_path / "r2")}, 30.0)
    assert first == second  # the same two players, no "asset already exists" failure
    assert [p.opened.sequence_path for p in second] == [folders["Coarse"], str(tmp_path / "r2")]
    assert isinstance(unreal.assets["/Game/Coarse2Real/Review/Street_Realified_Frames"], unreal.ImgMediaSource)
    assert second[1].opened.props["frame_rate_override"].numerator == 30 and second[0].looping
    assert unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).opened == first + second


def test_settings_panel_asks_the_daemon_off_the_game_thread_then_saves_what_the_user_chose(unreal, tmp_path):
    import socket

    silent = socket.socket()  # accepts connections and never answers: asking it takes the client's whole probe timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    unreal.saved_dir = str(tmp_path)
    actions = editor_module("unreal_actions")
    settings.save(settings.RealifySettings(address=address), actions.settings_path())
    shown = []

    def user(panel):
        shown.append(dict(panel.props))
        panel.set_editor_property("prompt", "")
        panel.set_editor_property("prompt_preset", type(panel).FIELDS["prompt_preset"].kind.MEMBERS[2])  # Golden hour
        panel.set_editor_property("seed", 11)
        return True

    unreal.details_dialog = user
    began = time.monotonic()
    actions.open_settings()
    assert time.monotonic() - began < 0.2 and not shown  # returned at once: the daemon is asked on another thread
    slowest = 0.0
    try:
        for _ in range(4000):  # the tick polls; every tick returns at once while the daemon keeps silent
            began = time.monotonic()
            remaining = unreal.tick()
            slowest = max(slowest, time.monotonic() - began)
            if remaining == 0:
                break
            time.sleep(0.005)
    finally:
        silent.close()
    assert slowest < 0.2, f"a tick took {slowest:.2f} s: the game thread waited for the daemon"
    [props] = shown
    assert props["daemon_address"] == address and "could not ask the daemon at " + address in props["daemon"]
    assert props["plan"] == "no plan: the daemon did not answer (see Daemon)"
    saved = settings.load(actions.settings_path())
    assert saved.prompt == settings.PROMPT_PRESETS["Golden hour"] and saved.seed == 11 and saved.address == address


def test_settings_panel_refuses_a_remote_daemon_without_a_token(unreal, tmp_path):
    unreal.saved_dir = str(tmp_path)
    panel_module = editor_module("unreal_settings_panel")
    report = daemon_info.DaemonReport("unreachable")

    def user(panel):
        panel.set_editor_property("daemon_address", "gpu-box:50051")
        return True

    unreal.details_dialog = user
    assert panel_module.edit(str(tmp_path / "s.json"), settings.RealifySettings(), report) is None
    assert not (tmp_path / "s.json").exists()
    assert any(kind == "dialog" and "Settings not saved" in m and "set the token" in m for kind, m in unreal.logs)


def test_saving_settings_that_do_not_fit_says_what_to_lower_before_any_render(unreal, tmp_path, monkeypatch):
    panel_module = editor_module("unreal_settings_panel")
    subject = daemon_info.plan_subject(settings.RealifySettings(), "Street", 48)
    asked = []

    def daemon_says(chosen, about):  # what fetch returns for a GPU too small for these settings
        asked.append((chosen.quality, about))
        return daemon_info.DaemonReport("daemon", reachable=True, plan="For Street (...): Does not fit on your RTX 4060 (8 GiB).\nLower the quality to preview.",
                                        fits=False, advice="Lower the quality to preview.")  # fmt: skip

    monkeypatch.setattr(panel_module, "fetch", daemon_says)

    def user(panel):
        panel.set_editor_property("quality", "final")
        return True

    unreal.details_dialog = user
    panel_module.edit(str(tmp_path / "s.json"), settings.RealifySettings(), daemon_info.DaemonReport("daemon", reachable=True), subject)
    for _ in range(2000):
        if unreal.tick() == 0:
            break
        time.sleep(0.005)
    assert asked == [("final", subject)]
    [dialog] = [m for kind, m in unreal.logs if kind == "dialog"]
    assert dialog.startswith("With the settings just saved:") and "Lower the quality to preview." in dialog

    unreal.logs.clear()
    unreal.details_dialog = lambda panel: panel.set_editor_property("seed", 3) or True  # nothing the plan depends on
    panel_module.edit(str(tmp_path / "s.json"), settings.RealifySettings(), daemon_info.DaemonReport("daemon", reachable=True), subject)
    assert unreal.post_tick == {} and len(asked) == 1


def test_a_daemon_older_than_plan_is_told_apart_from_a_missing_one(monkeypatch):
    import c2r.client
    from c2r.v1 import coarse2real_pb2 as pb

    class OldDaemon:  # a 1.0 daemon: GetInfo answers, Plan does not exist there
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def info(self):
            return pb.InfoReply(daemon_version="0.1.0", protocol_major=1, protocol_minor=0, models=["tiny"])

        def plan(self, *args, **kwargs):
            raise AssertionError("a 1.0 daemon must not be asked for a plan")

    monkeypatch.setattr(c2r.client, "connect", lambda *args, **kwargs: OldDaemon())
    report = daemon_info.fetch(settings.RealifySettings(), daemon_info.plan_subject(settings.RealifySettings(), "Street", 48))
    assert report.reachable and report.models == ["tiny"] and report.fits is None
    assert "protocol 1.0, which cannot plan: update coarse2real where it runs" in report.plan


def test_install_dependencies_runs_pip_off_the_game_thread_and_reports_its_failure(unreal, monkeypatch):
    started = threading.Event()

    def pip_fails(python, plugin_dir):
        started.wait(5)
        raise RuntimeError("pip failed (exit 1) running: /engine/python3 -m pip install ...")

    monkeypatch.setattr(dependencies, "install", pip_fails)
    editor_module("unreal_actions").install_dependencies()
    assert len(unreal.post_tick) == 1 and not any(kind == "dialog" for kind, _ in unreal.logs)  # returned while pip "runs"
    started.set()
    for _ in range(2000):
        if unreal.tick() == 0:
            break
        time.sleep(0.005)
    assert [m for kind, m in unreal.logs if kind == "dialog"] == ["pip failed (exit 1) running: /engine/python3 -m pip install ..."]


def test_the_double_refuses_the_editor_api_off_the_game_thread(unreal):
    """The rule every test here relies on to show that background threads never touch ``unreal``."""
    failures = []

    def worker():
        try:
            unreal.log("from a worker")
        except RuntimeError as error:
            failures.append(str(error))

    thread = threading.Thread(target=worker, name="c2r-test-worker")
    thread.start()
    thread.join()
    assert failures == ["unreal.log used from thread 'c2r-test-worker': the editor's API is game thread only"]
    unreal.log("from the game thread")
    assert unreal.logs == [("log", "from the game thread")]


@pytest.mark.parametrize("version", [(5, 4), (5, 7)])
def test_every_unreal_name_the_plugin_source_uses_is_in_the_cited_api_list(version):
    """Statically, so a path no test runs cannot call something the double (the cited API list) lacks."""
    import ast

    from unreal_double import POST_PROCESS_PASS_FIELDS, PROPERTIES, UnrealModuleDouble

    double = UnrealModuleDouble(version)
    properties = set().union(*(allowed for allowed, _ in PROPERTIES.values()), *POST_PROCESS_PASS_FIELDS.values())
    unknown = []
    for path in sorted((PLUGIN / "Content" / "Python").rglob("*.py")):
        tree = ast.parse(path.read_text())
        python_fields = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and getattr(n.value, "func", None) is not None
                         and getattr(n.value.func, "attr", "") == "uproperty" for t in n.targets}  # fmt: skip
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "unreal":
                if not hasattr(double, node.attr):
                    unknown.append(f"{where} unreal.{node.attr}")
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and getattr(node.value.value, "id", "") == "unreal":
                owner = getattr(double, node.value.attr, None)  # a library function or enum member: unreal.X.y
                if owner is not None and not hasattr(owner, node.attr):
                    unknown.append(f"{where} unreal.{node.value.attr}.{node.attr}")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("set_editor_property", "get_editor_property"):
                name = node.args[0]
                if isinstance(name, ast.Constant) and name.value not in properties | python_fields:
                    unknown.append(f"{where} editor property {name.value!r}")
    assert unknown == [], "not in tests/unreal_double.py's cited lists: " + ", ".join(unknown)


def test_an_internal_error_in_a_run_cancels_its_render_and_says_so(unreal, tmp_path):
    realify = editor_module("unreal_realify")
    run = realify.SequenceRealify(LevelSequenceDouble("Boom", 0, 9), settings.RealifySettings(output_root=str(tmp_path)))
    cancelled = []
    run.state, run.produce_cancel = "streaming", lambda: cancelled.append(True)
    run.stream = type("StreamDouble", (), {"cancel": lambda self: cancelled.append("stream")})()
    realify._active = run
    run._crashed(ValueError("bad"))
    assert cancelled == [True, "stream"] and realify._active is None
    assert any(kind == "dialog" and "internal error: ValueError('bad')" in m for kind, m in unreal.logs)
