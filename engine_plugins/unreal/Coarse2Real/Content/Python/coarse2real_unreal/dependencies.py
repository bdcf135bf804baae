"""The client's dependencies in Unreal's Python: the engine's own installer, or this plugin's folder.

Two ways, both the engine's (UE 5.4-5.7):

* **PythonRequirements** in ``Coarse2Real.uplugin``: with *Project Settings > Plugins > Python >
  Run Pip Install on Startup* on, the editor pip-installs every enabled plugin's declared
  requirements into ``<Project>/Intermediate/PipInstall`` at start-up (engine source:
  ``Engine/Plugins/Experimental/PythonScriptPlugin/Source/PythonScriptPlugin/Private/PipInstall.cpp``,
  ``FPipInstall::WritePluginDependencies`` reads ``PythonRequirements[].Platform/Requirements``;
  doc: dev.epicgames.com/documentation/en-us/unreal-engine/python-plugin-dependency-management-for-unreal-engine).
  Strict hash checking is on by default (``bPipStrictHashCheck``), so every requirement there is
  pinned with the sha256 of its cp311 wheel, transitive ones included. The coarse2real client is
  not on an index the engine can reach with a hash, so it still comes from the menu installer.
* **Plugin site-packages**: for each enabled plugin the engine adds
  ``<Plugin>/Content/Python/Lib/<UBT platform>/site-packages`` and ``<Plugin>/Content/Python/Lib/site-packages``
  to ``sys.path`` when they exist (``PythonScriptPlugin.cpp``, ``FPythonScriptPlugin::RegisterModulePaths``,
  ``PythonContentPath / "Lib" / FPlatformMisc::GetUBTPlatform() / "site-packages"``). Epic's doc page
  spells the platform folder the other way round (``Content/Python/<Platform>/Lib``); the source is what
  runs. **Coarse2Real > Install Dependencies** pip-installs the client and the same pins there with the
  engine's own interpreter (``unreal.get_interpreter_executable_path()``): no admin rights, nothing
  outside this plugin touched, wheels that match the engine's Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Callable

# import name -> what pip installs it from; c2r.client pulls grpcio, protobuf and numpy.
REQUIRED_MODULES = {"grpc": "grpcio", "google.protobuf": "protobuf", "numpy": "numpy", "OpenEXR": "OpenEXR", "c2r.client": "coarse2real"}
# sys.platform -> FPlatformMisc::GetUBTPlatform() of the editor running on it.
PLATFORM_FOLDERS = {"win32": "Win64", "darwin": "Mac", "linux": "Linux"}
UPLUGIN = "Coarse2Real.uplugin"


def platform_site_packages(plugin_dir: str, platform: str = sys.platform) -> str:
    """The per-platform folder the Python plugin puts on sys.path (compiled wheels go here)."""
    folder = PLATFORM_FOLDERS.get(platform)
    if folder is None:
        raise RuntimeError(f"Unreal Editor does not run on platform {platform!r}; expected one of {sorted(PLATFORM_FOLDERS)}")
    return os.path.join(plugin_dir, "Content", "Python", "Lib", folder, "site-packages")


def declared_requirements(plugin_dir: str, platform: str = sys.platform) -> list[str]:
    """The pinned, hashed requirement lines the .uplugin declares for this platform (the engine's list)."""
    with open(os.path.join(plugin_dir, UPLUGIN), encoding="utf-8") as handle:
        descriptor = json.load(handle)
    folder = PLATFORM_FOLDERS.get(platform, "")
    lines: list[str] = []
    for group in descriptor.get("PythonRequirements", []):
        if group.get("Platform", "All").lower() in ("all", folder.lower()):
            lines.extend(group.get("Requirements", []))
    return lines


def pinned_packages(requirement_lines: list[str]) -> list[str]:
    """``name==version`` of each requirement line, hashes dropped (pip --target cannot mix hashed and unhashed)."""
    return [line.split()[0] for line in requirement_lines]


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
        "Run Coarse2Real > Install Dependencies (main menu bar, needs internet once), then restart the editor. "
        "On UE 5.4+ the engine can install grpcio, protobuf, numpy and OpenEXR itself: Project Settings > Plugins > "
        "Python > Run Pip Install on Startup."
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


def pip_command(python_exe: str, target: str, source: str, pins: list[str]) -> list[str]:
    return [python_exe, "-m", "pip", "install", "--upgrade", "--no-user", "--target", target, source, *pins]


def install(python_exe: str, plugin_dir: str, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str:
    """pip-install the client into the plugin's site-packages and put it on sys.path now."""
    target = platform_site_packages(plugin_dir)
    os.makedirs(target, exist_ok=True)
    pins = pinned_packages(declared_requirements(plugin_dir)) or ["OpenEXR>=3.3"]  # Linux: no hashed pins declared
    command = pip_command(python_exe, target, coarse2real_source(plugin_dir), pins)
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
