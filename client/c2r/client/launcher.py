"""Finding a daemon, and starting an embedded one when none answers at a local address.

The embedded daemon is an ordinary `c2r serve` child process (so it behaves exactly like
one started by hand); its log goes to a file because nobody reads its stderr pipe, and a
pipe that fills up would stall it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import grpc

from .errors import DaemonUnavailable
from .transport import auth_metadata, channel_options, is_local, split_address

log = logging.getLogger("c2r.client")


def answers(address: str, timeout: float = 1.0) -> bool:
    """True if a gRPC server accepts connections at ``address`` within ``timeout`` seconds."""
    with grpc.insecure_channel(address, options=channel_options()) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


def _health_serving(channel: grpc.Channel, metadata, timeout: float) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout, metadata=metadata)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _info_answers(channel: grpc.Channel, metadata, timeout: float) -> bool:
    from c2r.v1 import coarse2real_pb2_grpc as pb_grpc

    from .config import info_request

    pb_grpc.Coarse2RealStub(channel).GetInfo(info_request(), timeout=timeout, metadata=metadata)
    return True


def serving(address: str, token: str | None, timeout: float = 1.0) -> bool:
    """True once the daemon's standard health service reports SERVING.

    An engine's embedded Python may have only the light client (no grpcio-health-checking);
    there a successful GetInfo stands in for the health check.
    """
    probe = _health_serving if importlib.util.find_spec("grpc_health") else _info_answers
    with grpc.insecure_channel(address, options=channel_options()) as channel:
        try:
            return probe(channel, auth_metadata(token), timeout)
        except grpc.RpcError:
            return False


@dataclass
class EmbeddedDaemon:
    """A `c2r serve` child this client started; stopped when the client closes."""

    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon's process group (front end and engine), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            self.process.wait()

    def _signal(self, sig: int) -> None:
        if hasattr(os, "killpg"):  # POSIX: the child leads its own process group
            os.killpg(self.process.pid, sig)
        else:  # Windows: the engine exits by itself once its front end is gone
            self.process.send_signal(sig)


def start_daemon(
    address: str,
    model: str | None = None,
    token: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 120.0,
    python: str | None = None,
) -> EmbeddedDaemon:
    """Start `c2r serve` on ``address`` and wait until its health service says SERVING.

    ``python`` is the interpreter that has the daemon extra installed; it defaults to this
    one, but an engine's embedded Python (Blender's, Unreal's) usually has only the client.
    """
    if not is_local(address):
        raise DaemonUnavailable(
            f"no daemon answers at {address} and the client only starts daemons on this machine "
            "(127.0.0.1/localhost): run `c2r serve --host ... --token ...` on that host"
        )
    host, port = split_address(address)
    command = [python or sys.executable, "-m", "c2r.cli.main", "serve", "--host", host, "--port", str(port)]
    if model:
        command += ["--model", model]
    if token:
        command += ["--token", token]
    command += list(extra_args)
    log_file = tempfile.NamedTemporaryFile(prefix=f"c2r-daemon-{port}-", suffix=".log", delete=False)
    # Its own session: a Ctrl-C in the terminal reaches the client, which cancels cleanly and
    # then stops the daemon, instead of killing the daemon under a session still writing.
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError as error:
        raise DaemonUnavailable(
            f"cannot run {command[0]} to start a daemon ({error}); give the Python that has coarse2real[daemon] installed"
        ) from None
    finally:
        log_file.close()
    daemon = EmbeddedDaemon(process, Path(log_file.name))
    deadline = time.monotonic() + timeout
    while not serving(address, token):
        if process.poll() is not None:
            raise DaemonUnavailable(
                f"the daemon started for {address} exited with code {process.returncode}; "
                f"its log ({daemon.log_path}) ends with:\n{daemon.log_tail()}"
            )
        if time.monotonic() > deadline:
            daemon.stop()
            raise DaemonUnavailable(
                f"the daemon started for {address} did not report SERVING within {timeout:.0f} s; "
                f"see its log {daemon.log_path}"
            )
        time.sleep(0.2)
    message = f"no daemon at {address}; started one (pid {daemon.pid}, log {daemon.log_path})"
    log.info(message)
    print(message, file=sys.stderr)
    return daemon


def ensure_daemon(
    address: str,
    token: str | None,
    start: bool,
    model: str | None,
    daemon_args: Iterable[str],
    probe_timeout: float,
    python: str | None = None,
) -> EmbeddedDaemon | None:
    """None if a daemon already answers at ``address``; else one started there (if allowed)."""
    if answers(address, timeout=probe_timeout):
        return None
    if not start:
        raise DaemonUnavailable(f"no daemon answers at {address}: start one with `c2r serve`, or pass start_daemon=True")
    return start_daemon(address, model=model, token=token, extra_args=tuple(daemon_args), python=python)
