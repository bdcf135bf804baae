"""Everything `c2r serve` can be told, in one place, with the defaults the docs promise."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_MESSAGE_BYTES = 64 * 2**20  # one Frame message; see the proto header and daemon/README.md
TRANSPORT_MESSAGE_BYTES = 4 * MAX_MESSAGE_BYTES  # gRPC's own cap: above MAX we still read it to refuse it clearly


@dataclass
class DaemonSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    token: str | None = None
    state_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "coarse2real" / "daemon")
    output_root: Path = field(default_factory=lambda: Path.home() / "coarse2real-output")
    model: str = "tiny"
    lora: str | None = None  # the operator's default LoRA (a path); sessions may name others only inside lora_dir
    lora_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "coarse2real" / "loras")
    device: str = "auto"
    preview_port: int = 50052
    heartbeat_timeout: float = 30.0  # seconds without a word from the engine before it counts as hung
    session_memory_mb: int = 1024  # per-session frame memory before spilling to disk
    engines: int = 0  # engine processes; 0: one per GPU (engine group), one on a CPU machine
    gpus_per_window: int = 1  # GPUs one window runs over (sequence parallel): an engine group per N GPUs
    ray: str | None = None  # Ray cluster address: batch jobs run there (c2r.daemon.cluster)

    def validate(self) -> "DaemonSettings":
        if self.host not in LOCAL_HOSTS and not self.token:
            raise ValueError(
                f"--host {self.host} exposes the daemon beyond this machine; pass --token SECRET too "
                "(clients then send 'authorization: Bearer SECRET'), or bind 127.0.0.1"
            )
        if self.heartbeat_timeout <= 1:
            raise ValueError(f"--heartbeat-timeout {self.heartbeat_timeout}: use more than 1 second (heartbeats come every 0.5 s)")
        if self.session_memory_mb < 0:
            raise ValueError(f"--session-memory-mb {self.session_memory_mb}: use 0 or more (0 spills every frame to disk)")
        if self.engines < 0:
            raise ValueError(f"--engines {self.engines}: use 0 (one per GPU or engine group) or a positive count")
        if self.gpus_per_window < 1:
            raise ValueError(f"--gpus-per-window {self.gpus_per_window}: use 1 or more GPUs per window")
        self.state_dir = Path(self.state_dir).expanduser().resolve()
        self.output_root = Path(self.output_root).expanduser().resolve()
        self.lora_dir = Path(self.lora_dir).expanduser().resolve()
        if self.lora is not None:
            self.lora = str(Path(self.lora).expanduser().resolve())
            if not Path(self.lora).exists():
                raise ValueError(f"--lora {self.lora}: no such file or folder; give a LoRA saved by `c2r train` "
                                 "(a folder or a .safetensors file)")
        return self
