"""A real `c2r serve` process for tests: start it on a free loopback port, talk to it, kill it.

Ports are chosen by the daemon itself (``--port 0``) and read from its "listening on" line,
so parallel runs never race for a port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

READY = re.compile(r"c2r daemon listening on (\S+):(\d+)")
MAX_MESSAGE = 256 * 2**20  # the daemon's transport cap, so tests can send oversize frames and see its refusal


@dataclass
class DaemonProcess:
    address: str
    state_dir: Path
    output_root: Path
    proc: subprocess.Popen
    token: str | None
    log_path: Path
    _channels: list = field(default_factory=list, repr=False)

    def channel(self):
        import grpc

        options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
        channel = grpc.insecure_channel(self.address, options=options)
        self._channels.append(channel)
        return channel

    def stub(self):
        from c2r.v1 import coarse2real_pb2_grpc as pb_grpc

        return pb_grpc.Coarse2RealStub(self.channel())

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def engine_pid(self, index: int = 0) -> int:
        return int((self.state_dir / f"engine-{index}.pid").read_text())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the daemon's whole process group (front end and engine)."""
        for channel in self._channels:
            channel.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL whatever of the group is left (an engine that outlived its front end)."""
        for channel in self._channels:
            channel.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def start_daemon(base: Path, *extra: str, token: str | None = None, state_dir: Path | None = None,
                 output_root: Path | None = None, timeout: float = 180.0) -> DaemonProcess:
    """Start `c2r serve` on a free loopback port and wait until it reports SERVING."""
    base.mkdir(parents=True, exist_ok=True)
    state_dir = state_dir or base / "state"
    output_root = output_root or base / "output"
    log_path = base / f"daemon-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "c2r.cli.main", "serve", "--port", "0", "--preview-port", "0", "--state-dir", str(state_dir),
           "--output-root", str(output_root), "--model", "tiny", "--device", "cpu", *extra]
    if token:
        cmd += ["--token", token]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            d = DaemonProcess(f"{match[1]}:{match[2]}", state_dir, output_root, proc, token, log_path)
            _wait_serving(d)
            return d
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"daemon not ready in {timeout} s:\n{log_path.read_text(errors='replace')}")


def _wait_serving(d: DaemonProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(d.channel())
    reply = stub.Check(health_pb2.HealthCheckRequest(), metadata=d.metadata, timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, reply
