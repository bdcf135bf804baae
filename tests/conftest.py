"""Shared fixtures: a REAL render daemon process on 127.0.0.1 with the tiny model.

``daemon`` (one per test session, shared: tests must not break it) yields a
``DaemonProcess`` with .address, .state_dir, .output_root, .proc and .token (plus helpers:
.stub(), .metadata, .engine_pid(), .log()). Tests that kill or restart things start a
private one with ``daemon_process.start_daemon``.
"""

from __future__ import annotations

import os
import sys

# The tiny models are many small ops: on a busy 2-core CI machine, OpenMP's thread team costs
# far more than it gives (a 250-frame tiny run: 59 s with 2 threads, 1.1 s with 1). Set before
# torch is imported; daemon and engine processes started by tests inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from daemon_process import start_daemon

# bpy 4.5 from PyPI is built for Python 3.11 only, and CI runs 3.11 with it installed (the
# `dev` extra): there a Blender test that skips because bpy is missing fails the run instead.
# On other Pythons the skip stands, with its reason.
BPY_PYTHON = (3, 11)
BPY_MISSING = "bpy (Blender as a Python module) is not installed"


def _bpy_skip_fails(report) -> None:
    if report.skipped and sys.version_info[:2] == BPY_PYTHON and BPY_MISSING in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"{report.longrepr}\n(Python {BPY_PYTHON[0]}.{BPY_PYTHON[1]} must run the Blender tests: install bpy==4.5.*)"


@pytest.hookimpl(tryfirst=True)  # before the terminal reporter counts it as a skip
def pytest_collectreport(report):
    """A Blender test module skipped at import (pytest.importorskip) on Python 3.11 is a failure."""
    _bpy_skip_fails(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """So is a Blender test that skips itself for want of bpy on Python 3.11."""
    outcome = yield
    _bpy_skip_fails(outcome.get_result())


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    d = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield d
    d.stop()
