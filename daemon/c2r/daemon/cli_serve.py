"""`c2r serve`: run the render daemon in the foreground (Ctrl-C or SIGTERM stops it)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys

from .settings import DaemonSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DaemonSettings()
    parser.add_argument("--host", default=d.host, help="address to bind (default 127.0.0.1; any other needs --token)")
    parser.add_argument("--port", type=int, default=d.port, help="gRPC port (0: any free port, printed when ready)")
    parser.add_argument("--token", default=None, help="require 'authorization: Bearer TOKEN' on every call")
    parser.add_argument("--state-dir", default=str(d.state_dir), help="job database, staged frames, spilled frames")
    parser.add_argument("--output-root", default=str(d.output_root), help="job outputs land under this folder, never outside it")
    parser.add_argument("--model", default=d.model, help="model loaded at start and used when a session names none")
    parser.add_argument("--model-path", default=None, metavar="DIR",
                        help="diffusers-format folder of --model's weights (default: the Hugging Face cache)")
    parser.add_argument("--lora", default=None, help="LoRA (folder or .safetensors) used when a session names none")
    parser.add_argument("--lora-dir", default=str(d.lora_dir),
                        help="folder of LoRAs sessions may choose by name (SessionConfig.lora); nothing outside it")
    parser.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"), help="where the engine runs the model")
    parser.add_argument("--preview-port", type=int, default=d.preview_port, help="ZeroMQ PUB port for preview frames on 127.0.0.1 (0: any)")
    parser.add_argument("--heartbeat-timeout", type=float, default=d.heartbeat_timeout,
                        help="seconds of engine silence before it counts as hung and is restarted")
    parser.add_argument("--session-memory-mb", type=int, default=d.session_memory_mb,
                        help="frames a session holds in memory before spilling to the state dir")
    parser.add_argument("--engines", type=int, default=d.engines,
                        help="engine processes running windows concurrently (default 0: one per GPU or engine group, "
                             "one on the CPU; on the CPU any count, for testing)")
    parser.add_argument("--gpus-per-window", type=int, default=d.gpus_per_window,
                        help="GPUs one window runs over (sequence parallel): the GPUs form engine "
                             "groups of this size; with --device cpu, processes per engine on gloo (for testing)")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run batch jobs (shots, anchor chunks) on this Ray cluster ('auto', 'HOST:PORT'); "
                             "needs the [cluster] extra")


# Copies at least this large bypass the CPU cache (glibc's non-temporal stores). The front end copies each frame once
# into a window buffer that another process (the engine) reads later, so caching what it writes only doubles the
# memory traffic (read-for-ownership) and evicts the slot it reads: on a 720p G-buffer frame (9.7 MiB) the copy
# takes about half the CPU time. glibc's own default (3/4 of the shared cache, ~100 MiB on big servers) is far above any plane.
STREAMING_COPY_BYTES = 1 << 20
TUNABLE = "glibc.cpu.x86_non_temporal_threshold"


def streaming_copies_env(environ: dict[str, str]) -> dict[str, str] | None:
    """The environment to run the daemon with so large copies are streaming (Linux, glibc, x86-64), or None if
    ``environ`` already has it, it does not apply here, or C2R_CACHED_COPIES=1 asks for glibc's default."""
    if sys.platform != "linux" or platform.machine() != "x86_64" or platform.libc_ver()[0] != "glibc":
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables or environ.get("C2R_CACHED_COPIES") == "1":
        return None
    entry = f"{TUNABLE}={STREAMING_COPY_BYTES:#x}"
    return {**environ, "GLIBC_TUNABLES": f"{tunables}:{entry}" if tunables else entry}


def run(args: argparse.Namespace) -> int:
    # glibc reads its tunables once, at process start: restart this same command with them (same pid, same argv),
    # only when this process was started as `... serve ...` (a program calling main(["serve"]) in-process is not replaced).
    if (env := streaming_copies_env(dict(os.environ))) is not None and "serve" in sys.orig_argv[1:]:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s daemon %(levelname)s %(message)s", stream=sys.stderr)
    settings = DaemonSettings(
        host=args.host, port=args.port, token=args.token, state_dir=args.state_dir, output_root=args.output_root,
        model=args.model, model_path=args.model_path, lora=args.lora, lora_dir=args.lora_dir, device=args.device, preview_port=args.preview_port, heartbeat_timeout=args.heartbeat_timeout,
        session_memory_mb=args.session_memory_mb, engines=args.engines, gpus_per_window=args.gpus_per_window,
        ray=args.ray,
    )
    try:
        settings.validate()
    except ValueError as e:
        print(f"c2r serve: {e}", file=sys.stderr)
        return 2
    from .server import serve  # grpc and the daemon's modules load only when serving

    return asyncio.run(serve(settings))
