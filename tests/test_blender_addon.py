"""The Blender extension in real Blender: every test of blender_addon_cases.py, each in a bpy process of its own.

Why a process per test: bpy 4.5 as a Python module is not a safe place for a long pytest run.
Seen here with bpy 4.5.15: a segfault inside the Python interpreter on one of the add-on's
worker threads (pure Python frames, the main thread asleep) a dozen tests into a run, and a
process that never exits once any Python thread outlives the interpreter: bpy's static
destructor (``GlobalState::~GlobalState``) destroys a condition variable its own
``delayed_close_thread_run`` thread still waits on (gdb backtraces). So each test runs as
``pytest blender_addon_cases.py::test_x`` in a fresh Python, which leaves with ``os._exit`` once
its result is out; a crash fails that one test, with the child's output, and the rest still run.

The daemon is started once, here (conftest's ``daemon``), and handed to every child.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("blender_addon_cases.py")
BPY_MISSING = "bpy (Blender as a Python module) is not installed: pip install 'bpy==4.5.*' (Python 3.11)"
CHILD_TIMEOUT_S = 240  # under pytest-timeout's 300 s (pyproject), so this message is the one seen
# pytest in the child; os._exit so that bpy's exit cannot hang a finished test (see above).
CHILD = "import os, sys, pytest; rc = pytest.main(sys.argv[1:]); sys.stdout.flush(); sys.stderr.flush(); os._exit(int(rc))"

BLENDER_CHATTER = re.compile(r"^(Fra:|Saved:|\s*Time:|Info:|\s*$)")  # what Blender prints while it renders

pytestmark = pytest.mark.blender


def case_names() -> list[str]:
    tree = ast.parse(CASES.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def run_case(name: str, daemon, tmp_path: Path) -> None:
    if importlib.util.find_spec("bpy") is None:
        pytest.skip(BPY_MISSING)
    env = dict(os.environ, C2R_TEST_DAEMON=daemon.address, BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"))
    command = [sys.executable, "-c", CHILD, f"{CASES}::{name}", "-q", "-x", "-p", "no:cacheprovider",
               "--basetemp", str(tmp_path / "child"), "-o", "console_output_style=classic"]  # fmt: skip
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                              cwd=CASES.parents[1])  # fmt: skip
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{name} did not end within {CHILD_TIMEOUT_S} s in bpy:\n{(timeout.stdout or b'')[-4000:]!r}")
    if done.returncode != 0 or not re.search(r"^1 passed\b", done.stdout, re.M):
        crashed = " (bpy crashed)" if done.returncode < 0 else ""
        output = "\n".join(line for line in done.stdout.splitlines() if not BLENDER_CHATTER.match(line))
        pytest.fail(f"{name} in bpy: exit {done.returncode}{crashed}\n{output[-8000:]}\n{done.stderr[-3000:]}", pytrace=False)


def _make_test(name: str):
    def test(daemon, tmp_path):
        run_case(name, daemon, tmp_path)

    test.__name__ = test.__qualname__ = name
    test.__doc__ = f"blender_addon_cases.py::{name}, in its own bpy process"
    return test


for _name in case_names():
    globals()[_name] = _make_test(_name)
