"""`c2r info`: what the daemon at an address runs (versions, device, GPUs, models)."""

from __future__ import annotations

import argparse
import sys

from c2r.v1 import coarse2real_pb2 as pb

from .cli_options import add_connection_options
from .errors import C2RError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print the raw InfoReply as JSON")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def format_info(info: pb.InfoReply, address: str) -> str:
    gpus = [f"{g.index}: {g.name} ({_gib(g.free_bytes)} free of {_gib(g.total_bytes)})" for g in info.gpus] or ["none"]
    capabilities = [f.name for f, on in info.capabilities.ListFields() if on] or ["none"]
    rows = [
        ("daemon", f"{info.daemon_version} at {address} (protocol {info.protocol_major}.{info.protocol_minor})"),
        ("device", info.device or "unknown"),
        ("gpus", "\n".join(gpus)),
        ("loaded model", info.loaded_model or "(none yet: loads with the first window)"),
        ("models", ", ".join(info.models) or "none"),
        ("qualities", ", ".join(info.qualities) or "none"),
        ("capabilities", ", ".join(capabilities)),
        ("max message", f"{info.max_message_bytes / 2**20:.0f} MiB" if info.max_message_bytes else "unknown"),
        ("preview", info.preview_address or "none"),
        ("output root", info.output_root or "unknown"),
    ]
    rows += [("warning", w) for w in info.warnings]
    width = max(len(name) for name, _ in rows)
    lines = []
    for name, value in rows:
        first, *rest = value.split("\n")
        lines.append(f"{name:<{width}}  {first}")
        lines += [f"{'':<{width}}  {line}" for line in rest]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .client import connect

    try:
        with connect(args.address, token=args.token, start_daemon=False) as client:
            info = client.info()
    except C2RError as error:
        print(f"c2r info: {error}", file=sys.stderr)
        return 1
    if args.json:
        from google.protobuf.json_format import MessageToJson

        print(MessageToJson(info))
    else:
        print(format_info(info, args.address))
    return 0
