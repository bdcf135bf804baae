"""The Unreal plugin's streaming path for real: MRQ-layout EXR files -> real client -> real daemon -> PNGs.

The editor is a double (``UnrealModuleDouble``); everything below it is real: the files are
written exactly as MRQ's multilayer EXR writer lays them out, the plugin's watcher, reader,
unit conversion and stream run unchanged, and the tiny model on a real daemon process
returns the frames.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unreal_double import LevelSequenceDouble, ScopedSlowTaskDouble, install_unreal_double
from unreal_mrq_layout import mrq_frame, synthetic_frame, write_mrq_multilayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine_plugins" / "unreal" / "Coarse2Real" / "Content" / "Python"))

HEIGHT, WIDTH = 32, 48
FIRST = 1001


@pytest.fixture
def editor():
    double = install_unreal_double()
    yield double, importlib.import_module("coarse2real_unreal.unreal_realify")
    ScopedSlowTaskDouble.cancel_after = None
    del sys.modules["unreal"]


def settings_for(daemon, tmp_path):
    from coarse2real_unreal.settings import RealifySettings

    return RealifySettings(address=daemon.address, token=daemon.token, model="tiny", quality="preview", seed=7,
                           model_resolution="native", output_root=str(tmp_path / "out"))  # fmt: skip


def write_frames(folder: str, sequence: str, frames: range) -> None:
    rng = np.random.default_rng(0)
    for frame in frames:
        color, depth, normals = synthetic_frame(frame - FIRST, HEIGHT, WIDTH, rng)
        write_mrq_multilayer(folder, sequence, frame, mrq_frame(color, depth, normals, "C2R_SceneDepth", "C2R_ViewNormal"))


def test_sequence_streams_as_mrq_writes_and_every_frame_comes_back(editor, daemon, tmp_path):
    unreal, realify = editor
    sequence = LevelSequenceDouble("Street", FIRST, FIRST + 9)
    run = realify.realify_sequence(sequence, settings_for(daemon, tmp_path))
    assert run is not None and run.executor.executed, unreal.logs

    # MRQ writes frames while it renders: some now, the rest from another thread, plus its side files.
    write_frames(run.coarse_dir, "Street", range(FIRST, FIRST + 4))
    Path(run.coarse_dir, "Street.json").write_text("{}")
    writer = threading.Thread(target=write_frames, args=(run.coarse_dir, "Street", range(FIRST + 4, FIRST + 9)))
    writer.start()
    writer.join()
    run.executor.finish(True)  # MRQ's on_executor_finished: the plugin waits with a slow task, then reviews

    status = run.stream.status
    assert status.error is None and not status.cancelled, status
    assert (status.frames_sent, status.frames_returned) == (9, 9)
    results = sorted(os.listdir(run.results_dir))
    assert results == [f"Street.{f:04d}.png" for f in range(FIRST, FIRST + 9)]
    for name in results:
        with Image.open(os.path.join(run.results_dir, name)) as image:
            assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    [task] = ScopedSlowTaskDouble.instances
    assert task.dialog is True and sum(work for work, _ in task.progress) <= 9
    opened = unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).props["opened"]
    assert [s.props["sequence_path"] for s in opened] == [run.coarse_dir, run.results_dir]
    assert realify._active is None  # the run closed its session and client


def test_failed_render_cancels_the_session_and_writes_nothing(editor, daemon, tmp_path):
    unreal, realify = editor
    run = realify.realify_sequence(LevelSequenceDouble("Broken", FIRST, FIRST + 30), settings_for(daemon, tmp_path))
    write_frames(run.coarse_dir, "Broken", range(FIRST, FIRST + 3))
    run.executor.finish(False)  # the user cancelled MRQ, or the render failed
    assert run.stream.status.cancelled and run.stream.status.error is None
    assert run.stream.status.frames_sent <= 3
    assert not os.path.isdir(run.results_dir) or os.listdir(run.results_dir) == []  # the 81-frame window never filled
    assert any(kind == "warning" and "cancelling the session" in message for kind, message in unreal.logs)
    assert realify._active is None


def test_cancel_in_the_progress_dialog_stops_the_stream_and_skips_review(editor, daemon, tmp_path):
    unreal, realify = editor
    ScopedSlowTaskDouble.cancel_after = 0  # the user presses Cancel at the first check
    run = realify.realify_sequence(LevelSequenceDouble("Cut", FIRST, FIRST + 9), settings_for(daemon, tmp_path))
    write_frames(run.coarse_dir, "Cut", range(FIRST, FIRST + 9))
    run.executor.finish(True)
    assert run.stream.status.cancelled and run.stream.status.error is None
    assert "opened" not in unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).props
    assert realify._active is None


def test_stale_frames_from_an_earlier_render_are_cleared_before_streaming(editor, daemon, tmp_path):
    unreal, realify = editor
    settings = settings_for(daemon, tmp_path)
    coarse_dir, _ = settings.folders("Again")
    write_frames(coarse_dir, "Again", range(FIRST + 5, FIRST + 8))  # leftovers that would be out of range
    run = realify.realify_sequence(LevelSequenceDouble("Again", FIRST, FIRST + 2), settings)
    assert os.listdir(run.coarse_dir) == []
    run.cancel()
    run.executor.finish(False)
    assert run.executor.cancelled and realify._active is None


def test_no_daemon_is_a_clear_error_and_leaves_nothing_running(editor, tmp_path):
    import socket

    from c2r.client import DaemonUnavailable
    from coarse2real_unreal.settings import RealifySettings

    _, realify = editor
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(DaemonUnavailable, match=address):
        realify.realify_sequence(LevelSequenceDouble("Lonely", 0, 9), RealifySettings(address=address, output_root=str(tmp_path)))
    assert realify._active is None


def test_viewport_capture_writes_every_pass_and_streams_them_through_the_daemon(editor, daemon, tmp_path):
    unreal, realify = editor
    unreal.current_sequence = LevelSequenceDouble("Anything", 10, 15)  # the capture steps through 10..14
    depth_material = normal_material = None

    def render(material):
        """What the scene capture draws for the current sequencer frame through ``material``."""
        color, depth, normals = synthetic_frame(unreal.sequencer_time[-1], HEIGHT, WIDTH, np.random.default_rng(0))
        if material is None:
            return color
        return np.repeat(depth[..., None], 3, axis=-1) if material is depth_material else normals

    unreal.RenderingLibrary.render = render
    materials = importlib.import_module("coarse2real_unreal.unreal_materials").ensure_pass_materials()
    depth_material, normal_material = materials["C2R_SceneDepth"], materials["C2R_ViewNormal"]

    assert realify.realify_viewport(settings_for(daemon, tmp_path), size=(WIDTH, HEIGHT)) is True, unreal.logs
    assert unreal.sequencer_time == list(range(10, 15))
    exported = sorted(os.path.basename(p) for p in unreal.RenderingLibrary.exported)
    assert exported == sorted(f"Viewport.{p}.{f:04d}.exr" for p in ("FinalImage", "C2R_SceneDepth", "C2R_ViewNormal") for f in range(10, 15))
    actors = unreal.get_editor_subsystem(unreal.EditorActorSubsystem)
    assert actors.destroyed == actors.spawned and len(actors.spawned) == 1  # the capture actor never outlives the run
    results_dir = settings_for(daemon, tmp_path).folders("Viewport")[1]
    assert sorted(os.listdir(results_dir)) == [f"Viewport.{f:04d}.png" for f in range(10, 15)]
    [opened] = unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).props["opened"]
    assert opened.props["sequence_path"] == results_dir
