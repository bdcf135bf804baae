"""Install the client's dependencies into Unreal's Python, inside this plugin's folder.

Unreal adds ``<Plugin>/Content/Python/<Platform>/Lib/site-packages`` to ``sys.path`` when
that folder exists (the place Epic documents for packages with compiled parts: grpcio,
numpy and OpenEXR all are), so installing there with ``pip --target`` needs no admin
rights, touches no other project and survives an engine upgrade of the plugin folder.
Run it with the engine's own interpreter (``unreal.get_interpreter_executable_path()``):
the editor binary is not a Python and wheels must match the engine's Python version.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Callable

# import name -> what pip installs it from; c2r.client pulls grpcio, protobuf and numpy.
REQUIRED_MODULES = {"grpc": "grpcio", "google.protobuf": "protobuf", "numpy": "numpy", "OpenEXR": "OpenEXR", "c2r.client": "coarse2real"}
EXTRA_REQUIREMENTS = ("OpenEXR>=3.3",)
PLATFORM_FOLDERS = {"win32": "Win64", "darwin": "Mac", "linux": "Linux"}


def platform_site_packages(plugin_dir: str, platform: str = sys.platform) -> str:
    folder = PLATFORM_FOLDERS.get(platform)
    if folder is None:
        raise RuntimeError(f"Unreal Editor does not run on platform {platform!r}; expected one of {sorted(PLATFORM_FOLDERS)}")
    return os.path.join(plugin_dir, "Content", "Python", folder, "Lib", "site-packages")


def missing_modules() -> list[str]:
    """Import names that this Python cannot find."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package itself is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def missing_message(missing: list[str]) -> str:
    packages = sorted({REQUIRED_MODULES[m] for m in missing})
    return (
        f"Coarse2Real needs {', '.join(packages)} in Unreal's Python (missing imports: {', '.join(missing)}). "
        "Run Coarse2Real > Install Dependencies (main menu bar) (needs internet once), then restart the editor."
    )


def coarse2real_source(plugin_dir: str) -> str:
    """The project checkout the plugin ships in (engine_plugins/unreal/Coarse2Real), else the PyPI name."""
    root = os.path.abspath(os.path.join(plugin_dir, os.pardir, os.pardir, os.pardir))
    pyproject = os.path.join(root, "pyproject.toml")
    if os.path.isfile(pyproject):
        with open(pyproject, encoding="utf-8") as handle:
            if 'name = "coarse2real"' in handle.read():
                return root
    return "coarse2real"


def pip_command(python_exe: str, target: str, source: str) -> list[str]:
    return [python_exe, "-m", "pip", "install", "--upgrade", "--no-user", "--target", target, source, *EXTRA_REQUIREMENTS]


def install(python_exe: str, plugin_dir: str, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str:
    """pip-install the client into the plugin's site-packages and put it on sys.path now."""
    target = platform_site_packages(plugin_dir)
    os.makedirs(target, exist_ok=True)
    command = pip_command(python_exe, target, coarse2real_source(plugin_dir))
    done = run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"pip failed (exit {done.returncode}) running: {' '.join(command)}\n{done.stderr[-2000:]}\n"
            "Check the editor's internet access or proxy, or run the same command in a terminal."
        )
    if target not in sys.path:
        sys.path.insert(0, target)
    importlib.invalidate_caches()
    return target
