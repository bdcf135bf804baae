"""Shared fixtures: a REAL render daemon process on 127.0.0.1 with the tiny model.

``daemon`` (one per test session, shared: tests must not break it) yields a
``DaemonProcess`` with .address, .state_dir, .output_root, .proc and .token (plus helpers:
.stub(), .metadata, .engine_pid(), .log()). Tests that kill or restart things start a
private one with ``daemon_process.start_daemon``.
"""

from __future__ import annotations

import os

# The tiny models are many small ops: on a busy 2-core CI machine, OpenMP's thread team costs
# far more than it gives (a 250-frame tiny run: 59 s with 2 threads, 1.1 s with 1). Set before
# torch is imported; daemon and engine processes started by tests inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from daemon_process import start_daemon


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    d = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield d
    d.stop()
