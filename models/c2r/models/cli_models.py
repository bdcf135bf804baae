"""`c2r models list|pull`: which backbones exist, which are on this machine, and fetching them."""

from __future__ import annotations

import sys

from . import tiny_trained

SHIPPED = (tiny_trained.PRESET_NAME, tiny_trained.C2R_PRESET_NAME)  # trained presets whose weights are package data


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="show the model presets and whether their weights are here")
    pull = sub.add_parser("pull", help="download a preset's weights (needs internet)")
    pull.add_argument("name", help="preset name, e.g. wan2.2-t2v-a14b")
    pull.add_argument("--dir", default=None, help="download into this folder instead of the Hugging Face cache")


def run(args) -> int:
    return {"list": list_models, "pull": pull_model}[args.models_command](args)


def list_models(args) -> int:
    from .registry import PRESETS, folder_size_bytes, local_path, missing_files

    print(f"{'name':18} {'kind':5} {'params':>9}  {'local':24} description")
    for p in PRESETS.values():
        folder = None if p.is_tiny else local_path(p)
        if p.kind == "c2r" and not p.is_tiny:
            where = _c2r_status()
        elif p.name in SHIPPED:
            where = "shipped (package data)"
        elif p.is_tiny:
            where = "built in-process"
        elif folder is None:
            where = "no (c2r models pull)"
        elif missing_files(p, folder):
            where = "incomplete (c2r models pull)"
        else:
            where = f"yes ({folder_size_bytes(folder) / 1e9:.1f} GB)"
        experts = len(p.experts)
        billions = f"{p.footprint.expert_params / 1e9:.2f}B"
        params = ("trained" if p.name in SHIPPED else "random") if p.is_tiny else f"{experts}x{billions}" if experts > 1 else billions
        print(f"{p.name:18} {p.kind:5} {params:>9}  {where:24} {p.description}")
    return 0


def pull_model(args) -> int:
    from .registry import get_preset

    try:
        preset = get_preset(args.name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if preset.is_tiny:
        what = "ships with the package" if preset.name in SHIPPED else "is built in-process with random weights"
        print(f"{preset.name} {what}; nothing to download")
        return 0
    if preset.kind == "c2r":
        return _pull_c2r(args)
    from huggingface_hub import snapshot_download

    print(f"downloading {preset.repo_id} ({preset.footprint.expert_params / 1e9:.2f}B parameters per expert) ...", file=sys.stderr)
    try:
        folder = snapshot_download(preset.repo_id, local_dir=args.dir)
    except Exception as err:  # the hub raises many connection error types; all mean the same to the user
        print(
            f"error: could not download {preset.repo_id}: {type(err).__name__}: {err}\n"
            "Check the internet connection (and HF_TOKEN if the repo is gated), then rerun "
            f"`c2r models pull {preset.name}`; or copy a diffusers-format folder here and pass its path.",
            file=sys.stderr,
        )
        return 1
    print(folder)
    return 0


def _c2r_status() -> str:
    from .coarse_to_real.weights import locate

    missing = locate().missing()
    return "yes" if not missing else f"missing {len(missing)} of 4 (pull)"


def _refused(err: Exception) -> bool:
    """The Hub refused access (a gated repo whose licence is not accepted, or no/invalid token)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    status = getattr(getattr(err, "response", None), "status_code", None)
    return isinstance(err, GatedRepoError) or (isinstance(err, HfHubHTTPError) and status in (401, 403))


def _pull_c2r(args) -> int:
    """Fetch C2R's four parts: the released files, Wan2.1's VAE/text encoder/tokenizer, DINOv3."""
    from pathlib import Path

    from huggingface_hub import snapshot_download

    from .coarse_to_real.weights import C2R_LICENCE, C2R_REPO, SOURCES

    print(f"c2r: the C2R weights are licensed {C2R_LICENCE}", file=sys.stderr)
    for source in SOURCES:
        target = str(Path(args.dir) / source.repo.split("/")[-1]) if args.dir else None
        print(f"downloading {source.name} ({source.repo}) ...", file=sys.stderr)
        try:
            folder = snapshot_download(source.repo, local_dir=target,
                                       allow_patterns=list(source.patterns) if source.patterns else None)
        except Exception as err:  # the hub raises many error types; a refusal gets its own advice
            if _refused(err):
                licence = C2R_LICENCE if source.repo == C2R_REPO else "its licence"
                print(
                    f"error: the Hugging Face Hub refused {source.repo} ({type(err).__name__}): it is a gated repository.\n"
                    f"Fix: sign in at https://huggingface.co/{source.repo}, read and accept {licence} there, then log in "
                    "on this machine (`hf auth login`, or set HF_TOKEN to a token of that account) and rerun "
                    "`c2r models pull c2r`.",
                    file=sys.stderr,
                )
            else:
                print(f"error: could not download {source.repo}: {type(err).__name__}: {err}\n"
                      "Check the internet connection, then rerun `c2r models pull c2r`.", file=sys.stderr)
            return 1
        print(folder)
    return 0
