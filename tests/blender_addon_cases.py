"""The Blender extension, in real Blender (bpy from PyPI, headless, Cycles on the CPU).

test_blender_addon.py runs each test here in a bpy process of its own (``pytest
blender_addon_cases.py::test_x``), against the daemon its own pytest started (C2R_TEST_DAEMON),
so that one crash of bpy fails one test, not the run.

The extension is enabled from a local extensions repository (as Blender's extension system
does it), renders a small procedural scene through Blender's own render operator, and
realifies it against a real daemon with the tiny model on 127.0.0.1. This Python also has the
daemon on its path; test_blender_installed.py runs the built extension zip in a Blender whose
Python has only the extension's wheels.

Background Blender renders a frame inside the render operator, its handlers on the main
thread, so what an artist does mid-render (Cancel, ESC) is done here from a render_post
handler of the test's own, while a frame renders. ESC cannot be pressed without a window:
the test fires ``render_cancel``, as Blender does on ESC (bpy.app.handlers.render_cancel).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from daemon_process import start_daemon

BPY_MISSING = "bpy (Blender as a Python module) is not installed: pip install 'bpy==4.5.*' (Python 3.11)"

# Keep Blender's user preferences and extension repositories out of the real home folder;
# Blender reads this once, when bpy is first imported.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="c2r-blender-user-"))
bpy = pytest.importorskip("bpy", reason=BPY_MISSING)

BLENDER_DIR = Path(__file__).resolve().parents[1] / "engine_plugins" / "blender"
_spec = importlib.util.spec_from_file_location("c2r_blender_demo_scene", BLENDER_DIR / "demo_scene.py")
demo_scene = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_scene)

pytestmark = pytest.mark.blender
WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="session")
def daemon():
    """The daemon the outer pytest started (test_blender_addon.py), so each bpy process does not start one."""
    address = os.environ.get("C2R_TEST_DAEMON")
    if not address:
        pytest.fail("run these through tests/test_blender_addon.py, which starts the daemon and one bpy process per test")
    return SimpleNamespace(address=address)


def addon_module(name: str, part: str):
    return sys.modules[f"{name}.{part}"]


@pytest.fixture(scope="module")
def addon(tmp_path_factory):
    """The extension enabled from a local repository, as Blender's extension system does it."""
    repo = tmp_path_factory.mktemp("extensions")
    (repo / "coarse2real").symlink_to(BLENDER_DIR / "coarse2real", target_is_directory=True)
    bpy.ops.preferences.extension_repo_add(name="c2r-tests", type="LOCAL", custom_directory=str(repo), use_custom_directory=True)
    repo_module = next(r.module for r in bpy.context.preferences.extensions.repos if r.directory == str(repo))
    name = f"bl_ext.{repo_module}.coarse2real"
    assert bpy.ops.preferences.addon_enable(module=name) == {"FINISHED"}
    yield SimpleNamespace(
        name=name,
        job=addon_module(name, "job"),
        passes=addon_module(name, "passes"),
        render_job=addon_module(name, "render_job"),
        viewport=addon_module(name, "viewport"),
        session_worker=addon_module(name, "session_worker"),
        prefs=lambda: bpy.context.preferences.addons[name].preferences,
    )
    bpy.ops.preferences.addon_disable(module=name)


@pytest.fixture
def scene(addon, tmp_path):
    scene = demo_scene.build_scene(WIDTH, HEIGHT, frames=9)
    scene.render.filepath = str(tmp_path / "render") + os.sep
    settings = scene.coarse2real
    settings.preset, settings.resolution, settings.window, settings.overlap = "preview", "native", 5, 1
    prefs = addon.prefs()
    prefs.start_daemon = False
    yield scene
    assert addon.job.ACTIVE is None, "a test left a run going"


def drive(addon, limit_s: float = 180.0):
    """Do what Blender's timer loop does: tick the active run until it says it is over."""
    run = addon.job.ACTIVE
    deadline = time.monotonic() + limit_s
    while run.tick() is not None:
        if time.monotonic() > deadline:
            run.cancel()
            raise AssertionError(f"the run did not finish within {limit_s} s: {addon.job.status().message}")
        time.sleep(0.02)
    return run


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a complete PNG; fails on a truncated or corrupt file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-12:] == struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")), path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_file_double(path: Path) -> Path:
    """A frame file as an earlier run would have left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n earlier run")
    return path


class RecordingConnectDouble:
    """The add-on's real connect, plus a copy of every frame the add-on hands to Session.send."""

    def __init__(self, addon):
        self.real_connect = addon.session_worker.connect_client
        self.sent: dict[int, dict[str, np.ndarray]] = {}

    def __call__(self, settings):
        client = self.real_connect(settings)
        open_session = client.realify

        def realify(**options):
            session = open_session(**options)
            send = session.send

            def recording_send(index, color, **planes):
                self.sent[index] = {"color": np.array(color), **{k: np.array(v) for k, v in planes.items() if v is not None}}
                return send(index, color, **planes)

            session.send = recording_send
            return session

        client.realify = realify
        return client


def camera_matrices(depsgraph, camera):
    """The camera's (view, projection) pair, as a 3D view's region data would give them."""
    return camera.matrix_world.inverted(), camera.calc_matrix_camera(depsgraph, x=WIDTH, y=HEIGHT)


def assert_matches_geometry(depth: np.ndarray, normals: np.ndarray, ray_depth: np.ndarray, ray_normals: np.ndarray) -> None:
    """Depth and normals agree with one camera ray per pixel centre.

    Cycles takes each pass from several jittered samples per pixel, so a few pixels on
    silhouettes and the horizon legitimately differ from the single centre ray.
    """
    assert depth.shape == ray_depth.shape and normals.shape == ray_normals.shape
    hit = np.isfinite(ray_depth)
    assert 0.05 < (~hit).mean() < 0.6, "the demo scene should show both sky and surfaces"
    assert (np.isfinite(depth) == hit).mean() > 0.97, "sky (inf) is where camera rays miss"
    both = hit & np.isfinite(depth)
    relative = np.abs(depth[both] - ray_depth[both]) / ray_depth[both]
    assert np.median(relative) < 1e-3 and np.percentile(relative, 90) < 1e-2
    dots = (normals[both].astype(np.float32) * ray_normals[both]).sum(-1)
    assert np.median(dots) > 0.99 and np.percentile(dots, 10) > 0.9, "normals are in camera space, like the ray casts"
    assert np.all(normals[~np.isfinite(depth)] == 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_extension_registers_its_ui_and_unregisters_cleanly(addon):
    assert hasattr(bpy.types, "COARSE2REAL_PT_render") and hasattr(bpy.types, "COARSE2REAL_PT_sidebar")
    assert {"realify_range", "realify_viewport", "cancel"} <= set(dir(bpy.ops.coarse2real))
    prefs = addon.prefs()
    assert prefs.address == "127.0.0.1:50051" and prefs.default_preset == "final"
    assert bpy.context.window_manager.coarse2real_status.state == "IDLE"

    bpy.ops.preferences.addon_disable(module=addon.name)
    assert not hasattr(bpy.types.Scene, "coarse2real") and not hasattr(bpy.types, "COARSE2REAL_PT_render")
    assert bpy.ops.preferences.addon_enable(module=addon.name) == {"FINISHED"}
    assert hasattr(bpy.types.Scene, "coarse2real")


def test_render_job_passes_match_the_scene_geometry_and_the_scene_is_put_back(addon, scene):
    """Z and Normal as captured from Blender's render (through the run's handlers) agree with ray casts through the camera."""
    scene.frame_end, scene.frame_current = 3, 2
    view_layer = bpy.context.view_layer
    output = scene.render.filepath
    assert scene.node_tree is None, "the demo scene has no compositor tree"
    capture = addon.passes.PassCapture(scene, view_layer)
    frames = []
    render = addon.render_job.FrameRender(scene, capture, [1, 2, 3], frames.append)
    steps = 0
    while not render.outcome:
        render.step()
        steps += 1
        assert [f.frame for f in frames] == [1, 2, 3][: min(steps, 3)], "one frame per step, read as it is written"
    assert render.outcome == "complete" and not render.busy and steps == 4
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for captured in frames:
        scene.frame_set(captured.frame)
        view, projection = camera_matrices(depsgraph, scene.camera)
        ray_depth, ray_normals = addon.viewport.raycast_planes(depsgraph, view, projection, WIDTH, HEIGHT)
        assert_matches_geometry(captured.depth, captured.normals, ray_depth, ray_normals)
        assert captured.color.shape == (HEIGHT, WIDTH, 3) and captured.color.dtype == np.uint8 and captured.color.std() > 5
    first, last = (f.depth[np.isfinite(f.depth)].mean() for f in (frames[0], frames[-1]))
    assert not np.isclose(first, last, rtol=1e-3)
    render.close()
    capture.close()
    assert scene.frame_current == 2, "the capture puts back the frame it found"
    assert not view_layer.use_pass_z and not view_layer.use_pass_normal and not scene.use_nodes
    assert scene.node_tree is None or len(scene.node_tree.nodes) == 0, "no Composite/Render Layers/Viewer left behind"
    assert scene.render.filepath == output and scene.render.image_settings.file_format == "PNG"
    assert not Path(output).exists(), "nothing is written over the artist's renders"
    assert all(h not in bpy.app.handlers.render_post for h in render._handlers.values())


def test_an_existing_compositor_tree_keeps_exactly_its_nodes(addon, scene):
    scene.use_nodes = True
    names = sorted(n.name for n in scene.node_tree.nodes)
    capture = addon.passes.PassCapture(scene, bpy.context.view_layer)
    assert addon.passes.NODE_NAME in scene.node_tree.nodes
    capture.close()
    assert sorted(n.name for n in scene.node_tree.nodes) == names and scene.use_nodes


def test_realify_frame_range_against_a_real_daemon(addon, scene, daemon):
    scene.frame_start, scene.frame_end = 3, 9  # output names must carry these numbers
    scene.coarse2real.write_movie = True  # this venv's Python has coarse2real's media writer (PyAV)
    scene.coarse2real.write_layers = True  # and OpenEXR (the extension bundles it: test_blender_installed.py)
    addon.prefs().address = daemon.address
    scene.frame_current = 5
    recorder = RecordingConnectDouble(addon)
    run = addon.job.RealifyRangeJob(bpy.context, connect=recorder)
    plan_at_render = []
    with RenderCounter(lambda scene: plan_at_render.append(addon.job.status().plan)) as renders:
        run.start()
        drive(addon)

    report = addon.job.status()
    assert report.state == "IDLE" and not report.is_error, report.message
    assert report.frames_returned == report.frames_total == 7 and renders.scenes == [scene.name] * 7
    assert scene.frame_current == 5, "the scene's current frame is put back"
    # The daemon's plan (c2r plan) is on the panel before the first frame renders; on this CPU daemon it says so.
    assert plan_at_render[0].startswith("No NVIDIA GPU on the daemon's machine: tiny runs on the CPU"), plan_at_render
    assert run.worker.shared_memory is True, "frames to a daemon on this machine go through shared memory"
    folder = Path(scene.render.filepath) / "realified"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"{f:04d}.png" for f in range(3, 10)]
    assert [p.name for p in folder.glob("*.mp4")] == ["realified_0003-0009.mp4"] and "movie written" in report.message
    assert all(png_size(folder / f"{f:04d}.png") == (WIDTH, HEIGHT) for f in range(3, 10))

    # What the daemon received is what the scene's geometry says, frame by frame.
    assert sorted(recorder.sent) == list(range(7))
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for index, frame in enumerate(range(3, 10)):
        sent = recorder.sent[index]
        scene.frame_set(frame)
        view, projection = camera_matrices(depsgraph, scene.camera)
        ray_depth, ray_normals = addon.viewport.raycast_planes(depsgraph, view, projection, WIDTH, HEIGHT)
        assert_matches_geometry(sent["depth"], sent["normals"], ray_depth, ray_normals)
        assert sent["color"].shape == (HEIGHT, WIDTH, 3) and sent["color"].dtype == np.uint8 and sent["color"].std() > 5
    assert not np.array_equal(recorder.sent[0]["depth"], recorder.sent[6]["depth"])

    # The multilayer EXRs: the render passes with the realified frame beside them, read by OpenEXR and by Blender.
    layers = sorted((folder / "layers").glob("*.exr"))
    assert [p.name for p in layers] == [f"{f:04d}.exr" for f in range(3, 10)] and "multilayer EXR of 7 frames" in report.message
    from c2r.client import media

    channels = media.read_exr(layers[0])
    layer = bpy.context.view_layer.name
    passes = {"Combined": "RGBA", "Depth": "Z", "Normal": "XYZ", "Realified": "RGB"}
    assert set(channels) == {f"{layer}.{name}.{c}" for name, cs in passes.items() for c in cs}
    png = np.round(addon.passes.read_image_pixels(str(folder / "0003.png"))[..., :3] * 255).astype(np.uint8)
    realified = np.stack([channels[f"{layer}.Realified.{c}"] for c in "RGB"], axis=-1)
    assert np.allclose(realified, media.srgb_to_linear(png), atol=1e-6), "the realified frame, in linear light"
    sent_depth = recorder.sent[0]["depth"]
    surface = np.isfinite(sent_depth)
    assert np.array_equal(channels[f"{layer}.Depth.Z"][surface], sent_depth[surface]), "the Z pass frame 3 sent"
    assert np.all(channels[f"{layer}.Depth.Z"][~surface] >= addon.passes.SKY_DEPTH), "as Blender wrote it: no inf"
    check = bpy.data.scenes.new("exr check")
    check.use_nodes = True
    reader = check.node_tree.nodes.new("CompositorNodeImage")
    reader.image = bpy.data.images.load(str(layers[0]))
    assert reader.image.type == "MULTILAYER"
    assert {"Combined", "Depth", "Normal", "Realified"} <= {o.name for o in reader.outputs if o.enabled}, "the compositor offers each pass"
    bpy.data.scenes.remove(check)

    # Loaded for A/B: an image sequence and a Sequencer strip at the same frame numbers.
    sequence = bpy.data.images["coarse2real realified"]
    assert sequence.source == "SEQUENCE" and Path(sequence.filepath).name == "0003.png"
    strips = bpy.data.scenes["coarse2real A/B"].sequence_editor.strips
    movie = strips["coarse2real realified"]
    assert movie.type == "MOVIE" and movie.frame_final_start == 3 and movie.frame_final_duration == 7
    assert strips["coarse render"].scene == scene and strips["coarse render"].frame_final_start == 3
    assert scene.sequence_editor is None or len(scene.sequence_editor.strips) == 0, "the rendered scene stays untouched"
    assert tuple(bpy.data.images["coarse2real live"].size) == (WIDTH, HEIGHT)
    assert not scene.use_nodes and (scene.node_tree is None or len(scene.node_tree.nodes) == 0), "no compositor tree left"


class MidRender:
    """A render_post handler of the test's own: after ``frame``, wait for the first realified
    frames (the artist watching), then act (press Cancel, or ESC) between two frames."""

    def __init__(self, addon, scene, frame: int, act):
        self.addon, self.scene, self.frame, self.act = addon, scene, frame, act
        self.messages: list[str] = []
        self.rendered: list[int] = []
        self.error: BaseException | None = None

    def __enter__(self):
        bpy.app.handlers.render_post.append(self)
        return self

    def __exit__(self, *exc):
        bpy.app.handlers.render_post.remove(self)

    def __call__(self, scene, *_):
        self.rendered.append(scene.frame_current)
        if scene.frame_current != self.frame:
            return
        try:
            self.watch_then_act(scene)
        except BaseException as error:  # Blender only prints what a handler raises: keep it for the test
            self.error = error

    def watch_then_act(self, scene):
        run, report = self.addon.job.ACTIVE, self.addon.job.status()
        deadline = time.monotonic() + 120
        while report.frames_returned == 0 and time.monotonic() < deadline:
            run.apply_events()
            self.messages.append(report.message)
            time.sleep(0.02)
        self.messages.append(report.message)  # (the first window may have come back in an earlier tick)
        assert 0 < report.frames_returned < report.frames_total, "the first window came back mid-render"
        self.act(scene)


def press_cancel(scene):
    assert bpy.ops.coarse2real.cancel() == {"FINISHED"}


def press_esc(scene):
    """What ESC in the render window does: Blender cancels its render job and fires render_cancel."""
    for handler in list(bpy.app.handlers.render_cancel):
        handler(scene, None)


def test_cancel_button_mid_render_keeps_every_earlier_result_and_restores_the_scene(addon, scene, daemon):
    cancel_mid_render(addon, scene, daemon, press_cancel)


def test_esc_mid_render_keeps_every_earlier_result_and_restores_the_scene(addon, scene, daemon):
    cancel_mid_render(addon, scene, daemon, press_esc)


def cancel_mid_render(addon, scene, daemon, act):
    scene.frame_end = 17
    addon.prefs().address = daemon.address
    folder = Path(scene.render.filepath) / "realified"
    earlier = {f: png_file_double(folder / f"{f:04d}.png") for f in (12, 15, 17)}  # a previous run's frames
    output = scene.render.filepath
    assert bpy.ops.coarse2real.realify_range() == {"FINISHED"}
    with MidRender(addon, scene, 7, act) as watcher:  # frames 1-5 are the first window (5 frames)
        drive(addon)
    if watcher.error is not None:
        raise watcher.error

    report = addon.job.status()
    assert report.state == "IDLE" and not report.is_error and report.message.startswith("Cancelled"), report.message
    assert "every earlier result is kept" in report.message
    assert all(path.read_bytes().endswith(b"earlier run") for path in earlier.values()), "a cancel keeps every earlier result"
    new = sorted(p.name for p in folder.iterdir() if int(p.stem) not in earlier)
    assert new == [f"{f:04d}.png" for f in range(1, 1 + len(new))] and len(new) == report.frames_returned <= 7
    assert all(png_size(folder / n) == (WIDTH, HEIGHT) for n in new)
    progress = [m for m in watcher.messages if "frames realified" in m]
    assert progress and all("/17 frames realified" in m for m in progress), "progress counts against the whole range"
    strip = bpy.data.scenes["coarse2real A/B"].sequence_editor.strips["coarse2real realified"]
    assert strip.type == "IMAGE" and [e.filename for e in strip.elements] == new
    assert scene.node_tree is None or addon.passes.NODE_NAME not in scene.node_tree.nodes
    assert scene.render.filepath == output and not scene.use_nodes and scene.frame_current == 1
    assert bpy.ops.coarse2real.realify_range.poll(), "a new run can start"


class RenderCounter:
    """Counts the frames Blender renders (render_pre), per scene; ``also`` is called at each."""

    def __init__(self, also=lambda scene: None):
        self.scenes: list[str] = []
        self.also = also

    def __enter__(self):
        bpy.app.handlers.render_pre.append(self)
        return self

    def __exit__(self, *exc):
        bpy.app.handlers.render_pre.remove(self)

    def __call__(self, scene, *_):
        self.scenes.append(scene.name)
        self.also(scene)


def test_a_run_the_daemons_gpu_cannot_hold_stops_before_anything_renders(addon, scene, daemon):
    """The plan's verdict as a daemon on a small card gives it (this CPU daemon has no GPU to plan for)."""
    addon.prefs().address = daemon.address
    real_connect = addon.session_worker.connect_client

    def small_card(settings):
        client = real_connect(settings)
        real_plan = client.plan

        def plan(width, height, frames=0, **options):
            reply = real_plan(width, height, frames, **options)
            assert (width, height, frames) == (WIDTH, HEIGHT, 9), "the plan is for the scene's frame size and range"
            reply.fits, reply.gpu_name = False, "NVIDIA GeForce RTX 3060"
            reply.summary = "Does not fit on your NVIDIA GeForce RTX 3060 (12 GiB): needs about 30 GiB."
            reply.advice = "Use the Preview preset or a shorter Window."
            return reply

        client.plan = plan
        return client

    with RenderCounter() as renders:
        addon.job.RealifyRangeJob(bpy.context, connect=small_card).start()
        drive(addon)
    report = addon.job.status()
    assert report.is_error and renders.scenes == []
    assert report.message == ("Nothing was rendered: Does not fit on your NVIDIA GeForce RTX 3060 (12 GiB): needs about "
                              "30 GiB. Use the Preview preset or a shorter Window.")  # fmt: skip


def test_no_daemon_is_reported_before_anything_renders(addon, scene):
    earlier = png_file_double(Path(scene.render.filepath) / "realified" / "0001.png")
    addon.prefs().address = f"127.0.0.1:{free_port()}"
    with RenderCounter() as renders:
        bpy.ops.coarse2real.realify_range()
        drive(addon)
    report = addon.job.status()
    assert report.state == "IDLE" and report.is_error and renders.scenes == []
    assert report.message == (
        f"No daemon is running at {addon.prefs().address}. Tick 'Start a local daemon' in "
        "Edit > Preferences > Add-ons > coarse2real, or press Start Daemon there"
    )
    assert [p.name for p in earlier.parent.iterdir()] == ["0001.png"], "a failed run keeps earlier results and adds nothing"


def test_a_wrong_token_is_reported_before_anything_renders(addon, scene, tmp_path):
    guarded = start_daemon(tmp_path / "guarded", token="right-token")
    try:
        prefs = addon.prefs()
        prefs.address, prefs.token = guarded.address, "wrong-token"
        with RenderCounter() as renders:
            bpy.ops.coarse2real.realify_range()
            drive(addon)
        report = addon.job.status()
        assert report.is_error and renders.scenes == []
        assert report.message == f"The daemon at {guarded.address} refused the token: set the daemon's token in Edit > Preferences > Add-ons > coarse2real > Token"
    finally:
        addon.prefs().token = ""
        guarded.stop()


def test_the_run_renders_its_own_scene_not_the_one_on_screen(addon, scene, daemon):
    scene.frame_end = 5
    addon.prefs().address = daemon.address
    on_screen, scene = scene, scene.copy()  # the run is started in a second scene (sharing the objects)
    assert bpy.context.scene == on_screen
    with bpy.context.temp_override(scene=scene):
        assert bpy.ops.coarse2real.realify_range() == {"FINISHED"}
    with RenderCounter() as renders:
        drive(addon)  # the ticks run with the screen's scene in context, as Blender's timers do
    report = addon.job.status()
    assert not report.is_error and report.frames_returned == 5, report.message
    assert renders.scenes == [scene.name] * 5


def test_realify_viewport_without_gpu_says_what_to_do(addon, scene):
    with pytest.raises(RuntimeError, match="needs Blender's GPU drawing"):
        bpy.ops.coarse2real.realify_viewport()
    report = addon.job.status()
    assert report.is_error and "Realify frame range" in report.message and addon.job.ACTIVE is None


def test_a_viewport_capture_comes_back_as_the_viewport_image(addon, scene, daemon):
    """Everything after the GPU draw (which background Blender cannot do): one frame, one-frame window."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depth, normals = addon.viewport.raycast_planes(depsgraph, *camera_matrices(depsgraph, scene.camera), WIDTH, HEIGHT)
    color = np.where(np.isfinite(depth)[..., None], 200, 40).astype(np.uint8).repeat(3, axis=2)
    capture = addon.viewport.ViewCapture(color, depth, normals)
    addon.prefs().address = daemon.address
    run = addon.job.RealifyViewportJob(bpy.context, capture=capture)
    run.start()
    drive(addon)
    report = addon.job.status()
    assert report.state == "IDLE" and not report.is_error and report.frames_returned == 1, report.message
    assert tuple(bpy.data.images["coarse2real viewport"].size) == (WIDTH, HEIGHT)
    assert png_size(Path(scene.render.filepath) / "realified" / "viewport.png") == (WIDTH, HEIGHT)


def test_relative_output_path_of_an_unsaved_file_is_refused_clearly(addon, scene):
    scene.render.filepath = "//render/"
    with pytest.raises(RuntimeError, match="not saved yet"):
        bpy.ops.coarse2real.realify_range()
    assert addon.job.ACTIVE is None


def test_a_setting_the_daemon_refuses_is_reported_with_its_value(addon, scene, daemon):
    scene.coarse2real.window = 6  # not 4k+1
    addon.prefs().address = daemon.address
    bpy.ops.coarse2real.realify_range()
    drive(addon)
    report = addon.job.status()
    assert report.state == "IDLE" and report.is_error
    assert report.message.startswith("The daemon refused a setting: Window 6"), report.message
    assert not any((Path(scene.render.filepath) / "realified").glob("*.png"))


def test_starts_a_local_daemon_when_none_answers_and_says_so(addon, scene, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the started daemon's default state and output folders
    scene.frame_end = 5
    prefs = addon.prefs()
    prefs.address, prefs.start_daemon = f"127.0.0.1:{free_port()}", True
    bpy.ops.coarse2real.realify_range()
    drive(addon)
    report = addon.job.status()
    assert not report.is_error and report.frames_returned == 5, report.message
    client = addon.session_worker.SHARED_CLIENT._client
    started = client.daemon.process
    assert started.poll() is None, "the daemon outlives the run, so the next run finds its model loaded"
    assert report.connection.startswith(f"Blender started the daemon (process {started.pid}); daemon at {prefs.address}:")
    addon.session_worker.SHARED_CLIENT.close()
    assert started.wait(timeout=30) is not None


class LayoutDouble:
    """Stands in for bpy's UILayout (which exists only while Blender draws a window) and checks
    what a real one would: every property exists on its owner, every operator is registered."""

    def __init__(self, log: list):
        self.log = log
        self.enabled = True
        self.use_property_split = False

    def _child(self, *args, **kwargs):
        return LayoutDouble(self.log)

    row = column = box = _child

    def prop(self, owner, name, **kwargs):
        assert name in owner.bl_rna.properties, f"{owner} has no property {name!r}"
        self.log.append(("prop", name))

    def operator(self, idname, **kwargs):
        group, name = idname.split(".")
        assert getattr(getattr(bpy.ops, group), name).get_rna_type(), idname
        self.log.append(("operator", idname))

    def label(self, text="", icon="NONE"):
        self.log.append(("label", text, icon))

    def progress(self, factor, text=""):
        self.log.append(("progress", factor, text))


def draw_panel(addon, scene):
    log: list = []
    panel_class = sys.modules[f"{addon.name}.panel"].COARSE2REAL_PT_render
    panel = SimpleNamespace(layout=LayoutDouble(log))
    context = SimpleNamespace(scene=scene, window_manager=bpy.context.window_manager, region=SimpleNamespace(width=280))
    panel_class.draw(panel, context)
    return log


def test_panel_shows_settings_progress_cancel_and_wrapped_messages(addon, scene, daemon):
    idle = draw_panel(addon, scene)
    props = [entry[1] for entry in idle if entry[0] == "prop"]
    assert props[:7] == ["prompt_preset", "prompt", "negative_prompt", "preset", "model", "seed", "strength"]
    assert [e[1] for e in idle if e[0] == "operator"] == ["coarse2real.realify_range", "coarse2real.realify_viewport"]

    addon.prefs().address = daemon.address
    bpy.ops.coarse2real.realify_range()
    running = draw_panel(addon, scene)
    assert ("operator", "coarse2real.cancel") in running
    assert any(e[0] == "progress" and "0/9 realified (0 rendered)" == e[2] for e in running)
    drive(addon)

    addon.prefs().address = f"127.0.0.1:{free_port()}"
    bpy.ops.coarse2real.realify_range()
    drive(addon)
    lines = [e for e in draw_panel(addon, scene) if e[0] == "label"]
    error_lines = [text for _, text, icon in lines if icon in ("ERROR", "BLANK1")]
    assert len(error_lines) > 1 and all(len(text) <= 280 // 7 for text in error_lines)
    assert " ".join(error_lines) == addon.job.status().message


def test_a_scene_without_camera_is_refused_clearly(addon, scene):
    scene.camera = None
    with pytest.raises(RuntimeError, match="no active camera: add one or set Scene Properties > Camera"):
        bpy.ops.coarse2real.realify_range()
    assert addon.job.ACTIVE is None and addon.passes.NODE_NAME not in (scene.node_tree.nodes if scene.node_tree else ())


def test_daemon_status_comes_from_getinfo_and_fills_the_model_list(addon, scene, daemon):
    control = sys.modules[f"{addon.name}.daemon_control"]
    addon.prefs().address = daemon.address
    control.query(start=False).join(30)
    status = control.STATUS
    assert status.running and not status.started_by_blender and status.busy == ""
    assert status.text.startswith(f"running at {daemon.address}: no GPU (CPU only: slow); ") and "coarse2real " in status.text
    assert "tiny" in status.models
    offered = sys.modules[f"{addon.name}.properties"]._daemon_models(scene.coarse2real, bpy.context, "VACE")
    assert offered and offered == [m for m in status.models if "vace" in m], "the Model field offers the daemon's models"
    assert control.stop() == "This daemon was not started by Blender: stop it where it runs"

    addon.prefs().address = f"127.0.0.1:{free_port()}"
    control.query(start=False).join(30)
    assert not status.running and status.text.startswith("No daemon is running at")
    log: list = []
    prefs = addon.prefs()
    sys.modules[f"{addon.name}.preferences"].C2RPreferences.draw(SimpleNamespace(layout=LayoutDouble(log), **{
        k: getattr(prefs, k) for k in ("address", "token", "start_daemon", "daemon_python", "default_preset")
    }, bl_rna=prefs.bl_rna), bpy.context)
    operators = [e[1] for e in log if e[0] == "operator"]
    assert operators == ["coarse2real.create_daemon_env", "coarse2real.daemon_status", "coarse2real.start_daemon", "coarse2real.stop_daemon"]
    assert ("label", f"Daemon: {status.text}", "UNLINKED") in log


def test_a_look_fills_the_prompt_and_settings_are_saved_with_the_blend(addon, scene, tmp_path):
    settings = scene.coarse2real
    settings.prompt_preset = "forest"
    assert settings.prompt.startswith("a real forest")
    settings.prompt += ", autumn"
    settings.seed = 42
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    reopened = bpy.context.scene.coarse2real
    assert reopened.prompt_preset == "forest" and reopened.prompt.endswith("leaves, dappled sunlight, photorealistic video, autumn")
    assert reopened.seed == 42
