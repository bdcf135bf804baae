"""The built extension zip in a Blender whose Python has only the extension's wheels for coarse2real.

A Blender download's Python has numpy and whatever an extension bundles, nothing else. Here
each test runs bpy in a subprocess without this repository on its path (no PYTHONPATH, own
user folder), installs the zip that build_extension.py builds with Blender's own
``bpy.ops.extensions.package_install_files``, and checks that ``c2r.client`` comes from the
extension's wheels and that ``c2r.daemon`` is absent. That Python is this test's Python minus
the repository, with its own grpcio, protobuf, typing_extensions and OpenEXR hidden
(blender_installed_run.OnlyBundled): the client's dependencies must come from the wheels the
extension bundles, as in a Blender download. (Torch and friends stay installed there; what
matters is that coarse2real's daemon is not importable in it, as in Blender.)

What the managed-environment test covers: a real ``python -m venv`` and a real offline
``pip install`` of the bundled client wheel through the add-on's builder (progress, log,
cancel, and the probe that refuses an environment without the daemon). It does not download
PyTorch or coarse2real[daemon] (no network in tests); the realify test instead points
*Daemon Python* at an existing install, a virtual environment whose site-packages hold a
``.pth`` of the repository's source roots and this Python's packages, which is what an
editable install of coarse2real[daemon] amounts to.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="c2r-blender-user-"))
pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed: pip install 'bpy==4.5.*' (Python 3.11)")

from test_blender_extension_build import build  # noqa: E402  (build_extension.py, loaded once)

REPO = Path(__file__).resolve().parents[1]
BLENDER_DIR = REPO / "engine_plugins" / "blender"
RUNNER = Path(__file__).with_name("blender_installed_run.py")
SOURCE_ROOTS = ("cli", "client", "daemon", "models", "proto")

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """The build's wheel cache: C2R_BLENDER_WHEELS if set (reused between runs), else a fresh folder."""
    chosen = os.environ.get("C2R_BLENDER_WHEELS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("wheels")


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory, wheel_dir) -> Path:
    """The extension as a user gets it: build_extension.py (wheels from PyPI, or the cache offline)."""
    offline = bool(list(wheel_dir.glob("grpcio-*.whl")))
    return build.build(tmp_path_factory.mktemp("dist"), wheel_dir, offline=offline, update_manifest=False)


def run_in_blender(tmp_path: Path, extension_zip: Path, action: str, arg: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BLENDER_USER_RESOURCES")}
    env.update(BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"), HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir(exist_ok=True)
    command = [sys.executable, str(RUNNER), str(extension_zip), str(BLENDER_DIR / "demo_scene.py"), str(tmp_path / "out"), action, arg]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert not result["c2r_before_install"], "the Blender Python must not see the repository"
    assert "/extensions/" in result["client_from"] and not result["daemon_module"], result
    return result


def assert_dependencies_from_the_wheels(result: dict) -> None:
    """grpcio, its typing_extensions, the health service and OpenEXR were imported, from the extension's wheels only."""
    origins = result["bundled_from"]
    assert set(origins) == {"grpc", "grpc_health", "typing_extensions", "OpenEXR"}
    assert all(origin and "/extensions/.local/" in origin for origin in origins.values()), origins


def existing_install(where: Path) -> Path:
    """A virtual environment where coarse2real[daemon] is importable (see the module docstring)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    paths = [str(REPO / root) for root in SOURCE_ROOTS] + site.getsitepackages()
    Path(purelib, "coarse2real-editable.pth").write_text("\n".join(paths) + "\n")
    return python


def test_the_default_setup_says_how_to_get_a_daemon_before_rendering(tmp_path, extension_zip):
    """Start a local daemon is on, but nothing can run it: no Blender-Python daemon that dies on start."""
    result = run_in_blender(tmp_path, extension_zip, "realify", "")
    assert result["is_error"] and result["renders"] == [] and result["frames"] == []
    assert result["message"].startswith("Blender cannot start the coarse2real daemon yet: its own Python has no daemon.")
    assert "'Create Daemon Environment'" in result["message"] and "'Daemon Python'" in result["message"]


def test_an_existing_install_as_daemon_python_starts_the_daemon_and_realifies(tmp_path, extension_zip):
    python = existing_install(tmp_path / "daemon-venv")
    result = run_in_blender(tmp_path, extension_zip, "realify", str(python))
    assert not result["is_error"], result["message"]
    assert result["frames"] == [f"{f:04d}.png" for f in range(1, 6)] and result["renders"] == [1, 2, 3, 4, 5]
    assert result["layers"] == [f"{f:04d}.exr" for f in range(1, 6)], "Write Multilayer EXR works with the bundled OpenEXR"
    assert result["daemon_cmdline"].startswith(f"{python} -m c2r.cli.main serve"), result["daemon_cmdline"]
    assert result["connection"].startswith("Blender started the daemon (process ")
    assert result["daemon_exit"] is not None, "closing the add-on's client stops the daemon Blender started"
    assert_dependencies_from_the_wheels(result)


def test_creating_the_managed_environment_runs_venv_and_pip_and_refuses_one_without_the_daemon(tmp_path, extension_zip, wheel_dir):
    result = run_in_blender(tmp_path, extension_zip, "build", str(wheel_dir))
    env_dir = Path(result["env_dir"])
    assert env_dir.parent.name == "coarse2real" and "/extensions/.user/" in str(env_dir), "in the extension's user folder"
    assert [label for _, label in result["steps"]] == ["Creating the environment", "Installing the coarse2real daemon"]
    assert result["argv"][0][1:] == ["-m", "venv", str(env_dir)]
    assert "Successfully installed coarse2real_client" in result["log"], result["log"][-2000:]
    assert result["state"] == "failed" and "does not have the coarse2real daemon installed" in result["message"]
    assert not result["env_exists"], "a failed environment is removed, so the next try starts clean"


def test_cancelling_the_managed_environment_stops_pip_and_removes_it(tmp_path, extension_zip, wheel_dir):
    result = run_in_blender(tmp_path, extension_zip, "build-cancel", str(wheel_dir))
    assert result["state"] == "cancelled" and result["message"].startswith("Cancelled")
    assert "Successfully installed" not in result["log"] and not result["env_exists"]
