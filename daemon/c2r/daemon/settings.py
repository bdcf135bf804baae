"""Everything `c2r serve` can be told, in one place, with the defaults the docs promise."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_MESSAGE_BYTES = 64 * 2**20  # one Frame message; see the proto header and daemon/README.md
TRANSPORT_MESSAGE_BYTES = 4 * MAX_MESSAGE_BYTES  # gRPC's own cap: above MAX we still read it to refuse it clearly


@dataclass(frozen=True)
class FrameLimits:
    max_width: int = 4096
    max_height: int = 4096

    def check(self, index: int, slot: str, shape: tuple[int, ...]) -> None:
        height, width = shape[0], shape[1]
        if width > self.max_width or height > self.max_height:
            raise InvalidInput(
                f"frame {index}: {slot} is {height}x{width} (HxW), beyond this daemon's limit of "
                f"{self.max_height}x{self.max_width} (GetInfo.limits); send frames at most that size"
            )


@dataclass(frozen=True)
class Limits:
    """What a session may ask for, refused up front beyond (and advertised in GetInfo.limits)."""

    frames: FrameLimits = FrameLimits()
    max_window: int = 257  # frames; Wan was trained on 81
    max_seed: int = 2**32 - 1  # every engine's seed type holds it; window k draws seed + k
    max_ring_bytes: int = 2 * 2**30
    max_batch_frames: int = 64  # FrameBatch / ResultBatch (protocol 1.2)
    # What a batch message stays under. Small: batches pay off for small frames (the tiny demo's 48 results are
    # 1.7 MiB); a 720p result (2.6 MiB) goes alone, so the front end holds no more than before while writing it.
    max_batch_bytes: int = 4 * 2**20

    def message(self) -> pb.Limits:
        return pb.Limits(max_frame_width=self.frames.max_width, max_frame_height=self.frames.max_height,
                         max_window=self.max_window, max_seed=self.max_seed, max_ring_bytes=self.max_ring_bytes,
                         max_batch_frames=self.max_batch_frames, max_batch_bytes=self.max_batch_bytes)


LIMITS = Limits()


def private_folder(path: Path) -> Path:
    """``path`` (and missing parents) as a folder only this user can enter (0700), whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` if missing, readable and writable by this user only (0600), whatever the umask."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path


@dataclass
class DaemonSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    token: str | None = None
    state_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "coarse2real" / "daemon")
    output_root: Path = field(default_factory=lambda: Path.home() / "coarse2real-output")
    model: str = "tiny"
    model_path: Path | None = None  # a diffusers-format folder of ``model``'s weights; None: the Hugging Face cache
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
            raise ValueError(f"--heartbeat-timeout {self.heartbeat_timeout}: use more than 1 second (the engine sends a heartbeat every eighth of it, at most every 2 s)")
        if self.session_memory_mb < 0:
            raise ValueError(f"--session-memory-mb {self.session_memory_mb}: use 0 or more (0 spills every frame to disk)")
        if self.engines < 0:
            raise ValueError(f"--engines {self.engines}: use 0 (one per GPU or engine group) or a positive count")
        if self.gpus_per_window < 1:
            raise ValueError(f"--gpus-per-window {self.gpus_per_window}: use 1 or more GPUs per window")
        self.state_dir = Path(self.state_dir).expanduser().resolve()
        self.output_root = Path(self.output_root).expanduser().resolve()
        self.lora_dir = Path(self.lora_dir).expanduser().resolve()
        if self.model_path is not None:
            self.model_path = Path(self.model_path).expanduser().resolve()
            if not self.model_path.is_dir():
                raise ValueError(f"--model-path {self.model_path}: no such folder; give the diffusers-format folder of "
                                 f"--model {self.model} (the one holding model_index.json), or leave it out to use the "
                                 "Hugging Face cache (`c2r models pull NAME`)")
        if self.lora is not None:
            self.lora = str(Path(self.lora).expanduser().resolve())
            if not Path(self.lora).exists():
                raise ValueError(f"--lora {self.lora}: no such file or folder; give a LoRA saved by `c2r train` "
                                 "(a folder or a .safetensors file)")
        return self
