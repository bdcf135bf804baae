"""The Python the daemon runs in: an install the artist points at, or one the add-on creates.

Blender's own Python holds only the extension's client wheels (grpcio, protobuf, c2r.client):
it cannot run the daemon, which needs torch and ``coarse2real[daemon]``. So the add-on starts
the daemon with another Python: the one set in the preferences, or else a virtual environment
it manages in the extension's user folder (``bpy.utils.extension_path_user``, which Blender
keeps across extension updates). This module does not import bpy: it runs the same from
Blender and from a plain Python (and the tests run it from both).

Creating the environment is three commands, each a child process whose output goes to a log:
``python -m venv``, ``pip install torch`` from PyPI's CUDA or CPU build (chosen by whether
``nvidia-smi`` finds an NVIDIA GPU), and ``pip install coarse2real[daemon]``. The last step
asks the new Python itself whether it can run the daemon (``probe``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# PyTorch's wheel indexes (pytorch.org/get-started/locally): CUDA 12.8 builds run on every
# NVIDIA driver from 570 on; the CPU build is small and runs anywhere.
TORCH_INDEXES = {"cuda": "https://download.pytorch.org/whl/cu128", "cpu": "https://download.pytorch.org/whl/cpu"}
PACKAGE = "coarse2real[daemon]"
ENV_FOLDER = "daemon-env"

# Run by the candidate Python: can it serve, and with what? One JSON line on stdout.
_PROBE = """
import importlib.metadata as metadata, json
import c2r.daemon.server, torch
try:
    version = metadata.version("coarse2real")
except metadata.PackageNotFoundError:
    version = "source checkout"
print(json.dumps({"version": version, "torch": torch.__version__, "cuda": torch.cuda.is_available()}))
"""


class DaemonSetupError(RuntimeError):
    """No Python that can run the daemon: the message says what to set or press."""


@dataclass(frozen=True)
class DaemonPython:
    path: str
    version: str  # coarse2real's
    torch: str
    cuda: bool

    def describe(self) -> str:
        device = "NVIDIA GPU" if self.cuda else "CPU only"
        return f"coarse2real {self.version}, PyTorch {self.torch} ({device}) in {self.path}"


def env_python(env_dir: Path) -> Path:
    """The interpreter of the virtual environment at ``env_dir``."""
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def probe(python: str | Path, timeout: float = 120.0) -> DaemonPython:
    """Ask ``python`` whether it can run the daemon; raises DaemonSetupError saying why not."""
    python = str(python)
    if not Path(python).is_file():
        raise DaemonSetupError(f"there is no Python at {python}")
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DaemonSetupError(f"could not run the Python at {python} ({error})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        missing = {"'c2r": "the coarse2real daemon", "'torch'": "PyTorch"}
        what = next((name for module, name in missing.items() if f"No module named {module}" in last), None)
        if what is None:
            raise DaemonSetupError(f"the Python at {python} cannot run the daemon: {last}")
        raise DaemonSetupError(f"the Python at {python} does not have {what} installed")
    return DaemonPython(python, **json.loads(done.stdout.strip().splitlines()[-1]))


def has_nvidia_gpu() -> bool:
    """True when nvidia-smi is on PATH and lists a GPU (the NVIDIA driver installs it)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False
    try:
        listed = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


@dataclass(frozen=True)
class Step:
    label: str  # what the artist reads while it runs
    argv: tuple[str, ...]


def install_steps(env_dir: Path, base_python: str, gpu: bool, package: str = PACKAGE, pip_options: tuple[str, ...] = ()) -> list[Step]:
    """The commands that create the environment at ``env_dir``.

    ``pip_options`` are added to every pip call: a studio's mirror (``--index-url``) or an
    offline wheel folder (``--no-index --find-links DIR``); with ``--no-index`` torch comes
    from that folder like everything else, so the PyTorch index step is left out.
    """
    python = str(env_python(env_dir))
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", *pip_options)
    steps = [Step("Creating the environment", (base_python, "-m", "venv", str(env_dir)))]
    if "--no-index" not in pip_options:
        kind = "cuda" if gpu else "cpu"
        label = "Installing PyTorch for your NVIDIA GPU" if gpu else "Installing PyTorch (no NVIDIA GPU found: CPU build)"
        steps.append(Step(label, (*pip, "--index-url", TORCH_INDEXES[kind], "--extra-index-url", "https://pypi.org/simple", "torch")))
    steps.append(Step("Installing the coarse2real daemon", (*pip, package)))
    return steps


@dataclass
class BuildState:
    state: str = "idle"  # idle, running, done, failed, cancelled
    step: int = 0  # 1-based, while running
    steps: int = 0
    label: str = ""
    last_line: str = ""
    message: str = ""  # the outcome, in words
    result: DaemonPython | None = field(default=None, repr=False)


class EnvironmentBuilder:
    """Runs ``install_steps`` on a thread, writes everything to ``log_path``; cancel stops the running command.

    A failed or cancelled build removes the half-made environment, so the next try starts clean.
    """

    def __init__(self, env_dir: Path, steps: list[Step], log_path: Path):
        self.env_dir = env_dir
        self.steps = steps
        self.log_path = log_path
        self.status = BuildState(steps=len(steps))
        self._cancel = threading.Event()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="c2r-daemon-env", daemon=True)

    def start(self) -> None:
        if self.env_dir.exists():
            raise DaemonSetupError(f"{self.env_dir} already exists: remove it first to create the environment again")
        self.status.state = "running"
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w", encoding="utf-8", errors="replace") as log:
            try:
                for number, step in enumerate(self.steps, 1):
                    self.status.step, self.status.label, self.status.last_line = number, step.label, ""
                    log.write(f"$ {' '.join(step.argv)}\n")
                    log.flush()
                    code = self._run_step(step, log)
                    if self._cancel.is_set():
                        return self._end("cancelled", "Cancelled: the half-made environment was removed")
                    if code != 0:
                        return self._end("failed", f"{step.label} failed (exit code {code}); the log {self.log_path} says why")
                result = probe(env_python(self.env_dir))
            except (OSError, DaemonSetupError) as error:
                return self._end("failed", f"{error}; the log {self.log_path} has the details")
            self.status.result = result
            self._end("done", f"Ready: {result.describe()}")

    def _run_step(self, step: Step, log) -> int:
        with self._lock:
            if self._cancel.is_set():
                return -1
            self._process = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             text=True, errors="replace")  # fmt: skip
        for line in self._process.stdout:
            log.write(line)
            log.flush()
            if line.strip():
                self.status.last_line = line.strip()[-120:]
        return self._process.wait()

    def _end(self, state: str, message: str) -> None:
        if state != "done":
            shutil.rmtree(self.env_dir, ignore_errors=True)
        self.status.state, self.status.message = state, message


def resolve_python(chosen: str, managed_env: Path) -> str:
    """The Python to start the daemon with: the one chosen in the preferences, else the managed one.

    Blender's own Python is used only when it can run the daemon itself (bpy installed as a
    module into a Python that also has coarse2real[daemon]); a Blender download never can.
    """
    if chosen:
        return probe(chosen).path
    managed = env_python(managed_env)
    if managed.is_file():
        return probe(managed).path
    import importlib.util

    if importlib.util.find_spec("c2r.daemon") is not None and importlib.util.find_spec("torch") is not None:
        return sys.executable
    raise DaemonSetupError(
        "Blender cannot start the coarse2real daemon yet: its own Python has no daemon. In Edit > Preferences > "
        "Add-ons > coarse2real, press 'Create Daemon Environment' (downloads about 3 GB once), or set 'Daemon Python' "
        "to a Python where coarse2real[daemon] is installed"
    )
