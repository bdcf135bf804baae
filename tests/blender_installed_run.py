"""Run inside a Blender subprocess by test_blender_installed.py: install the extension zip the
way Blender does, then do what the test asks and print one JSON line with what happened.

    python blender_installed_run.py ZIP DEMO_SCENE OUT_DIR ACTION [ARG]

ACTION: ``realify`` (ARG: the Daemon Python preference, may be empty), ``build`` (ARG: the
wheel folder to create the managed environment from, offline), ``build-cancel`` (ARG: same).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

# An editable install of the project (of this checkout or another) puts its source roots on
# sys.path through a .pth file; Blender's own Python has none of them, so take every folder that
# holds a c2r part off before anything imports c2r (site-packages, which holds bpy, stays).
def _source_root(entry: str) -> bool:
    folder = Path(entry or ".")
    return (folder / "c2r").is_dir() and not (folder / "bpy").exists()


sys.path[:] = [entry for entry in sys.path if not _source_root(entry)]


class OnlyBundled(importlib.abc.MetaPathFinder):
    """The client's dependencies come from the extension's wheels or not at all, as in a Blender download
    (whose Python has numpy but no grpcio, protobuf, typing_extensions or OpenEXR): this Python's own copies are hidden."""

    ROOTS = ("grpc", "grpc_health", "google", "typing_extensions", "OpenEXR")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in self.ROOTS or path is not None:
            return None  # submodules are found through their package's own __path__
        bundled = [entry for entry in sys.path if "/extensions/.local/" in entry.replace(os.sep, "/")]
        spec = importlib.machinery.PathFinder.find_spec(name, bundled)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} among the extension's wheels", name=name)
        return spec


sys.meta_path.insert(0, OnlyBundled())

import bpy  # noqa: E402

ZIP, DEMO_SCENE, OUT, ACTION = sys.argv[1:5]
ARG = sys.argv[5] if len(sys.argv) > 5 else ""
PACKAGE = "bl_ext.user_default.coarse2real"

report: dict = {"c2r_before_install": importlib.util.find_spec("c2r") is not None}
assert bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True) == {"FINISHED"}
report["client_from"] = importlib.util.find_spec("c2r.client").origin
report["daemon_module"] = importlib.util.find_spec("c2r.daemon") is not None
addon = {name: sys.modules[f"{PACKAGE}.{name}"] for name in ("job", "daemon_control", "session_worker", "preferences")}
prefs = bpy.context.preferences.addons[PACKAGE].preferences


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def realify() -> None:
    spec = importlib.util.spec_from_file_location("demo_scene", DEMO_SCENE)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    scene = demo.build_scene(64, 48, frames=5)
    scene.render.filepath = str(Path(OUT) / "render") + "/"
    settings = scene.coarse2real
    settings.preset, settings.resolution, settings.window, settings.overlap, settings.model = "preview", "native", 5, 1, "tiny"
    settings.write_layers = True
    prefs.address, prefs.start_daemon, prefs.daemon_python = f"127.0.0.1:{free_port()}", True, ARG
    renders = []
    bpy.app.handlers.render_pre.append(lambda scene, *_: renders.append(scene.frame_current))
    assert bpy.ops.coarse2real.realify_range() == {"FINISHED"}
    run, deadline = addon["job"].ACTIVE, time.monotonic() + 300
    while run.tick() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    status = addon["job"].status()
    client = addon["session_worker"].SHARED_CLIENT._client
    daemon = getattr(client, "daemon", None)
    report.update(
        message=status.message, is_error=status.is_error, connection=status.connection, renders=renders,
        frames=sorted(p.name for p in (Path(OUT) / "render" / "realified").glob("*.png")),
        layers=sorted(p.name for p in (Path(OUT) / "render" / "realified" / "layers").glob("*.exr")),
        daemon_cmdline=" ".join(daemon.process.args) if daemon else "",
    )  # fmt: skip
    addon["session_worker"].SHARED_CLIENT.close()
    report["daemon_exit"] = daemon.process.wait(timeout=30) if daemon else None


def build(cancel: bool) -> None:
    control = addon["daemon_control"]
    # Offline from the extension's wheel folder, the client wheel alone (--no-deps: installing grpcio
    # too would only cost time; the probe refuses the environment for want of the daemon either way).
    builder = control.start_build(pip_options=("--no-index", "--find-links", ARG, "--no-deps"), package="coarse2real_client")
    seen = set()
    deadline = time.monotonic() + 300
    while builder.status.state == "running" and time.monotonic() < deadline:
        if builder.status.step:
            seen.add((builder.status.step, builder.status.label))
        if cancel and builder.status.step == 2:
            builder.cancel()
        time.sleep(0.05)
    builder.join(60)
    report.update(
        state=builder.status.state, message=builder.status.message, steps=sorted(seen), env_dir=str(builder.env_dir),
        env_exists=builder.env_dir.exists(), log=builder.log_path.read_text(errors="replace"),
        argv=[list(step.argv) for step in builder.steps],
    )  # fmt: skip


{"realify": realify, "build": lambda: build(False), "build-cancel": lambda: build(True)}[ACTION]()
report["bundled_from"] = {name: getattr(sys.modules.get(name), "__file__", None) for name in OnlyBundled.ROOTS if name != "google"}
report["threads_left"] = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
print("RESULT " + json.dumps(report), flush=True)
sys.stderr.flush()
# bpy as a module does not return from interpreter exit after package_install_files (seen with
# bpy 4.5.15: no Python thread is left, Blender's own exit waits); the report is out, so leave.
os._exit(0)
