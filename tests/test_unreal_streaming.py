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
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2r.client import connect
from unreal_double import LevelSequenceDouble, install_unreal_double
from unreal_mrq_layout import mrq_frame, synthetic_frame, write_mrq_multilayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine_plugins" / "unreal" / "Coarse2Real" / "Content" / "Python"))

HEIGHT, WIDTH = 32, 48
FIRST = 1001


@pytest.fixture
def editor():
    double = install_unreal_double()
    yield double, importlib.import_module("coarse2real_unreal.unreal_realify")
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


def tick_until(unreal, condition, what: str, ticks: int = 20000):
    """Run editor frames (each a few ms apart) until ``condition()``; the run's own threads work meanwhile."""
    for _ in range(ticks):
        if condition():
            return
        unreal.tick()
        time.sleep(0.005)
    raise AssertionError(f"gave up waiting for {what}; logs: {unreal.logs}")


def test_sequence_streams_as_mrq_writes_and_every_frame_comes_back(editor, daemon, tmp_path):
    unreal, realify = editor
    queue = unreal.get_editor_subsystem(unreal.MoviePipelineQueueSubsystem).get_queue()
    users_job = queue.allocate_new_job(unreal.MoviePipelineExecutorJob)
    run = realify.start(realify.SequenceRealify(LevelSequenceDouble("Street", FIRST, FIRST + 9), settings_for(daemon, tmp_path)))
    assert run is not None and run.state == "connecting" and len(unreal.post_tick) == 1  # start() returned at once
    tick_until(unreal, lambda: run.state == "streaming", "the session to start")
    assert unreal.get_editor_subsystem(unreal.MoviePipelineQueueSubsystem).is_rendering() and not users_job.is_enabled()

    # MRQ writes frames while it renders: some now, the rest from another thread, plus its side files.
    write_frames(run.coarse_dir, "Street", range(FIRST, FIRST + 4))
    Path(run.coarse_dir, "Street.json").write_text("{}")
    writer = threading.Thread(target=write_frames, args=(run.coarse_dir, "Street", range(FIRST + 4, FIRST + 9)))
    writer.start()
    tick_until(unreal, lambda: not writer.is_alive() and run.stream.status.frames_sent >= 4, "frames to be sent while rendering")
    run.render.executor.finish(True)  # MRQ's on_executor_finished
    tick_until(unreal, lambda: realify._active is None, "the run to finish")

    status = run.stream.status
    assert status.error is None and not status.cancelled, status
    assert (status.frames_sent, status.frames_returned) == (9, 9)
    assert run.session.shared_memory  # a loopback daemon: the client handed the frames over in its shared-memory ring
    results = sorted(os.listdir(run.results_dir))
    assert results == [f"Street.{f:04d}.png" for f in range(FIRST, FIRST + 9)]
    for name in results:
        with Image.open(os.path.join(run.results_dir, name)) as image:
            assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    assert queue.get_jobs() == [users_job] and users_job.is_enabled()  # the user's queue as it was
    opened = unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).opened
    preview, *players = opened
    assert preview is run.preview.target and unreal.drawn and all(target is preview for target, _ in unreal.drawn)
    assert [p.opened.sequence_path for p in players] == [run.coarse_dir, run.results_dir]
    assert unreal.post_tick == {}  # the run unregistered its tick
    assert unreal.menus["LevelEditor.LevelEditorToolBar.PlayToolBar"].entries[("Coarse2Real", "Coarse2Real.RealifyButton")].label == "Realify"
    with connect(daemon.address, token=daemon.token, start_daemon=False) as client:  # the daemon's own answer, for reference
        expected = client.plan(1920, 1080, 9, **run.settings.session_options()).summary
    assert ("log", f"Coarse2Real: For Street (9 frames at 1920x1080): {expected}") in unreal.logs  # before the render started


def test_failed_render_cancels_the_session_and_writes_nothing(editor, daemon, tmp_path):
    unreal, realify = editor
    run = realify.start(realify.SequenceRealify(LevelSequenceDouble("Broken", FIRST, FIRST + 30), settings_for(daemon, tmp_path)))
    tick_until(unreal, lambda: run.state == "streaming", "the session to start")
    write_frames(run.coarse_dir, "Broken", range(FIRST, FIRST + 3))
    run.render.executor.finish(False)  # the user cancelled MRQ, or the render failed
    tick_until(unreal, lambda: realify._active is None, "the run to end")
    assert run.stream.status.cancelled and run.stream.status.error is None
    assert run.stream.status.frames_sent <= 3
    assert not os.path.isdir(run.results_dir) or os.listdir(run.results_dir) == []  # the 81-frame window never filled
    assert any(kind == "warning" and "cancelling the session" in message for kind, message in unreal.logs)
    assert not hasattr(unreal.get_editor_subsystem(unreal.AssetEditorSubsystem), "opened") or all(
        not isinstance(a, unreal.MediaPlayer) for a in unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).opened)


def test_cancel_from_the_menu_stops_the_render_and_the_stream_and_skips_review(editor, daemon, tmp_path):
    unreal, realify = editor
    run = realify.start(realify.SequenceRealify(LevelSequenceDouble("Cut", FIRST, FIRST + 9), settings_for(daemon, tmp_path)))
    tick_until(unreal, lambda: run.state == "streaming", "the session to start")
    write_frames(run.coarse_dir, "Cut", range(FIRST, FIRST + 3))
    importlib.import_module("coarse2real_unreal.unreal_actions").cancel()
    assert run.render.executor.cancelled  # MRQ was told; it reports the end through its delegate
    run.render.executor.finish(False)
    tick_until(unreal, lambda: realify._active is None, "the run to end")
    assert run.stream.status.cancelled and run.stream.status.error is None
    assert not any(isinstance(a, unreal.MediaPlayer) for a in getattr(unreal.get_editor_subsystem(unreal.AssetEditorSubsystem), "opened", []))


def test_stale_frames_from_an_earlier_render_are_cleared_before_streaming(editor, daemon, tmp_path):
    unreal, realify = editor
    settings = settings_for(daemon, tmp_path)
    coarse_dir, _ = settings.folders("Again")
    write_frames(coarse_dir, "Again", range(FIRST + 5, FIRST + 8))  # leftovers that would be out of range
    run = realify.start(realify.SequenceRealify(LevelSequenceDouble("Again", FIRST, FIRST + 2), settings))
    assert os.listdir(run.coarse_dir) == []
    run.cancel()  # while still connecting: the session is closed as soon as it opens
    tick_until(unreal, lambda: realify._active is None, "the run to end")
    assert run.stream is None and unreal.post_tick == {}


def test_no_daemon_is_a_clear_error_in_a_dialog_and_leaves_nothing_running(editor, tmp_path):
    import socket

    from coarse2real_unreal.settings import RealifySettings

    unreal, realify = editor
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    run = realify.start(realify.SequenceRealify(LevelSequenceDouble("Lonely", 0, 9), RealifySettings(address=address, output_root=str(tmp_path))))
    assert run is not None  # the editor was not held while the connection failed
    tick_until(unreal, lambda: realify._active is None, "the connection attempt to fail")
    dialogs = [message for kind, message in unreal.logs if kind == "dialog"]
    assert len(dialogs) == 1 and address in dialogs[0] and "c2r serve" in dialogs[0]
    assert unreal.post_tick == {} and not unreal.get_editor_subsystem(unreal.MoviePipelineQueueSubsystem).is_rendering()


def test_viewport_capture_writes_every_pass_one_frame_per_tick_and_streams_them_through_the_daemon(editor, daemon, tmp_path):
    unreal, realify = editor
    unreal.current_sequence = LevelSequenceDouble("Anything", 10, 15)  # the capture steps through 10..14
    materials = importlib.import_module("coarse2real_unreal.unreal_materials").ensure_pass_materials()

    def render(material):
        """What the scene capture draws for the current sequencer frame through ``material``."""
        color, depth, normals = synthetic_frame(unreal.sequencer_time[-1], HEIGHT, WIDTH, np.random.default_rng(0))
        if material is None:
            return color
        return np.repeat(depth[..., None], 3, axis=-1) if material is materials["C2R_SceneDepth"] else normals

    unreal.render = render
    run = realify.start(realify.ViewportRealify(settings_for(daemon, tmp_path), (WIDTH, HEIGHT)))
    tick_until(unreal, lambda: run.state == "streaming", "the session to start")
    unreal.tick()
    assert unreal.sequencer_time == [10]  # one frame per editor tick, never the whole range at once
    tick_until(unreal, lambda: realify._active is None, "the run to finish")
    assert unreal.sequencer_time == list(range(10, 15))
    exported = sorted(os.path.basename(p) for p in unreal.exported)
    assert exported == sorted(f"Viewport.{p}.{f:04d}.exr" for p in ("FinalImage", "C2R_SceneDepth", "C2R_ViewNormal") for f in range(10, 15))
    actors = unreal.get_editor_subsystem(unreal.EditorActorSubsystem)
    assert actors.destroyed == actors.spawned and len(actors.spawned) == 1  # the capture actor never outlives the run
    assert run.stream.status.error is None, run.stream.status
    assert sorted(os.listdir(run.results_dir)) == [f"Viewport.{f:04d}.png" for f in range(10, 15)]
    players = [a for a in unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).opened if isinstance(a, unreal.MediaPlayer)]
    assert [p.opened.sequence_path for p in players] == [run.results_dir]
    assert any(kind == "log" and m.startswith(f"Coarse2Real: For Viewport (5 frames at {WIDTH}x{HEIGHT}): ") for kind, m in unreal.logs)


def test_settings_panel_lists_what_the_real_daemon_serves_and_refuses_a_model_it_does_not(editor, daemon, tmp_path):
    from coarse2real_unreal import settings

    unreal, _ = editor
    unreal.saved_dir = str(tmp_path)
    actions = importlib.import_module("coarse2real_unreal.unreal_actions")
    settings.save(settings.RealifySettings(address=daemon.address, token=daemon.token), actions.settings_path())
    shown = []

    def user(panel):
        shown.append(panel.get_editor_property("daemon"))
        panel.set_editor_property("model", "no-such-model")
        return True

    unreal.details_dialog = user
    actions.open_settings()
    tick_until(unreal, lambda: shown and not unreal.post_tick, "the panel to open and close")
    [daemon_text] = shown
    assert "coarse2real daemon" in daemon_text and "tiny" in daemon_text.split("models:")[1], daemon_text
    [refusal] = [m for kind, m in unreal.logs if kind == "dialog"]
    assert "'no-such-model' is not one the daemon serves" in refusal and "tiny" in refusal
    assert settings.load(actions.settings_path()).model == ""  # nothing saved


def test_settings_panel_shows_the_real_daemons_plan_for_the_open_sequence_and_asks_again_after_a_change(editor, daemon, tmp_path):
    from coarse2real_unreal import settings

    unreal, _ = editor
    unreal.saved_dir = str(tmp_path)
    unreal.current_sequence = LevelSequenceDouble("Street", 1001, 1049)  # 48 frames, no size set: MRQ's 1920x1080
    actions = importlib.import_module("coarse2real_unreal.unreal_actions")
    saved = settings.RealifySettings(address=daemon.address, token=daemon.token, model="tiny")
    settings.save(saved, actions.settings_path())
    shown = []

    def user(panel):
        shown.append(panel.get_editor_property("plan"))
        panel.set_editor_property("quality", "final")  # what the plan depends on: asked again after OK
        return True

    unreal.details_dialog = user
    actions.open_settings()
    tick_until(unreal, lambda: shown and not unreal.post_tick, "the panel, then the second plan")
    with connect(daemon.address, token=daemon.token, start_daemon=False) as client:  # the daemon's own answers, for reference
        before = client.plan(1920, 1080, 48, **saved.session_options())
        after = client.plan(1920, 1080, 48, **settings.load(actions.settings_path()).session_options())
    assert before.summary and shown == [f"For Street (48 frames at 1920x1080): {before.summary}"]
    replanned = [m for kind, m in unreal.logs if kind == "log" and "with the settings just saved" in m]
    assert replanned == [f"Coarse2Real: with the settings just saved: For Street (48 frames at 1920x1080): {after.summary}"]
    assert not [m for kind, m in unreal.logs if kind == "dialog"]  # this CPU daemon has nothing to lower: no dialog
