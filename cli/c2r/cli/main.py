"""The `c2r` command: one entry point, one subcommand per job.

Each subcommand lives with the part it drives and is imported only when it runs, so
`c2r info` works with the light client install and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module that defines `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("c2r.daemon.cli_serve", "run the render daemon"),
    "realify": ("c2r.client.cli_realify", "realify a video or image sequence (starts a daemon if none runs)"),
    "info": ("c2r.client.cli_info", "show the daemon's versions, GPU and loaded model"),
    "jobs": ("c2r.client.cli_jobs", "list, watch or cancel export jobs"),
    "preview": ("c2r.client.cli_preview", "watch the daemon's live preview frames"),
    "models": ("c2r.models.cli_models", "list or pull model weights"),
    "plan": ("c2r.models.cli_plan", "will a model fit my GPU? the memory plan per component and the levers"),
    "datagen": ("c2r.models.research.cli_datagen", "build (rendered, realistic) training pairs"),
    "train": ("c2r.models.research.cli_train", "train the IC-LoRA"),
    "eval": ("c2r.models.research.cli_eval", "score (input, output) video pairs"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from c2r.client.version import __version__

    parser = argparse.ArgumentParser(prog="c2r", description="coarse2real: coarse 3D renders to photorealistic video")
    parser.add_argument("--version", action="version", version=f"coarse2real {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
