"""Where C2R's four parts live, and building them (the tiny preset in-process).

The ``c2r`` preset is four downloads:
* the released C2R files ``c2r-dit-backbone-14B.safetensors`` and ``c2r-dino-adapter.safetensors``
  (gated Hub repo ``gonsaBRK/coarse2real``, CC BY-NC-ND 4.0), anywhere in its snapshot;
* Wan2.1-T2V-14B's diffusers components without its transformer weights (VAE, UMT5-XXL,
  tokenizer, transformer/config.json): the C2R backbone replaces every DiT weight;
* DINOv3 ViT-B/16 (gated Hub repo, Meta's DINOv3 licence).
Each is looked up under ``--model-path`` (one folder, or several joined by the OS path
separator, searched a few levels deep) and then in the Hugging Face cache; nothing is
downloaded implicitly (``c2r models pull c2r`` does that).

``tiny-c2r``: the same classes at toy width with random, seedable weights (a 14-block Wan so
the whole 13-block injection schedule runs, a 1-layer DINOv3 with 4 register tokens).

``tiny-trained-c2r``: the ``tiny-trained`` base (no IC-LoRA) with a feature adapter trained on the
synthetic testbed over the DINO STAND-IN it records (``dino.StandinDino``, random weights):
``--model-path`` names the adapter/ folder `c2r train --set conditioning='feature-adapter'`
wrote, else the one committed beside the preset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .adapter import C2RControl, ControlShapes
from .checkpoint import ADAPTER_FILE, BACKBONE_FILE, load_backbone, load_control, read_safetensors
from .dino import RELEASED_DINO, tiny_dino_config

C2R_REPO = "gonsaBRK/coarse2real"
WAN_REPO = "Wan-AI/Wan2.1-T2V-14B-Diffusers"
C2R_LICENCE = "CC BY-NC-ND 4.0 (non-commercial, no derivatives; gated: accept it on the Hub)"
# Wan's diffusers folder minus the 14B transformer weights the C2R backbone replaces
WAN_PATTERNS = ("model_index.json", "vae/*", "text_encoder/*", "tokenizer/*", "transformer/config.json")
SEARCH_DEPTH = 4
TINY_DINO_WIDTH = 16


@dataclass(frozen=True)
class Source:
    """One of the four parts: what it is called, its Hub repo, what identifies it on disk."""

    name: str
    repo: str
    patterns: tuple[str, ...] | None = None  # what `pull` fetches (None: the whole repo)


SOURCES = (
    Source("C2R backbone + adapter", C2R_REPO),
    Source("Wan2.1-T2V-14B VAE, UMT5-XXL, tokenizer", WAN_REPO, WAN_PATTERNS),
    Source("DINOv3 ViT-B/16", RELEASED_DINO),
)


class C2RWeightsMissing(FileNotFoundError):
    """Some of the c2r preset's parts are not on this machine."""


def _folders(model_path: str | os.PathLike | None) -> list[Path]:
    if model_path is None:
        return []
    return [Path(p).expanduser() for p in str(model_path).split(os.pathsep) if p]


def _walk(root: Path, depth: int = SEARCH_DEPTH):
    """Folders under root (root included), at most ``depth`` levels down, links followed."""
    if not root.is_dir():
        return
    yield root
    if depth:
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            yield from _walk(child, depth - 1)


def _cached(repo: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _is_wan_folder(folder: Path) -> bool:
    return all((folder / f).is_file() for f in ("model_index.json", "vae/config.json", "text_encoder/config.json",
                                                   "tokenizer/tokenizer_config.json"))


def _is_dino_folder(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "dinov3_vit"
    except (OSError, ValueError):
        return False


@dataclass
class C2RLocation:
    backbone: Path | None
    adapter: Path | None
    wan: Path | None
    dino: Path | None

    def missing(self) -> list[str]:
        return [what for what, where in (
            (BACKBONE_FILE, self.backbone), (ADAPTER_FILE, self.adapter),
            (f"{WAN_REPO} (VAE, text encoder, tokenizer)", self.wan), (RELEASED_DINO, self.dino),
        ) if where is None]


def locate(model_path: str | os.PathLike | None = None) -> C2RLocation:
    """Find the four parts: under ``model_path`` folders first, then in the Hugging Face cache."""
    found = C2RLocation(None, None, None, None)
    roots = _folders(model_path) + [p for p in (_cached(C2R_REPO), _cached(WAN_REPO), _cached(RELEASED_DINO)) if p]
    for root in roots:
        for folder in _walk(root):
            for attr, file in (("backbone", BACKBONE_FILE), ("adapter", ADAPTER_FILE)):
                if getattr(found, attr) is None and (folder / file).is_file():
                    setattr(found, attr, folder / file)
            if found.wan is None and _is_wan_folder(folder):
                found.wan = folder
            if found.dino is None and _is_dino_folder(folder):
                found.dino = folder
    return found


def missing_error(location: C2RLocation, model_path) -> C2RWeightsMissing:
    where = f"--model-path {model_path} and the Hugging Face cache" if model_path else "the Hugging Face cache"
    return C2RWeightsMissing(
        f"the c2r model needs {', '.join(location.missing())}, not found in {where}. Fix: run `c2r models pull c2r` "
        f"on a machine with internet (accept the licences of the gated repos {C2R_REPO} [{C2R_LICENCE}] and "
        f"{RELEASED_DINO} on the Hub first), or point --model-path at folders holding them."
    )


def _transformer_config(wan: Path) -> dict:
    from .. import registry

    path = wan / "transformer" / "config.json"
    if path.is_file():
        return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    return dict(registry.get_preset("c2r").transformer_config)


def load_real(model_path, dtype: torch.dtype) -> dict:
    """The c2r preset's components on the CPU, in ``dtype`` (the VAE in float32)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, DINOv3ViTModel, UMT5EncoderModel

    location = locate(model_path)
    if location.missing():
        raise missing_error(location, model_path)
    with torch.device("meta"):
        transformer = WanTransformer3DModel(**_transformer_config(location.wan))
    load_backbone(transformer, {k: v.to(dtype) for k, v in read_safetensors(location.backbone).items()})
    dino = DINOv3ViTModel.from_pretrained(location.dino, dtype=dtype).eval()
    width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    with torch.device("meta"):
        control = C2RControl(ControlShapes.for_models(dino.config.hidden_size, width))
    load_control(control, read_safetensors(location.adapter))
    return {
        "transformer": transformer.eval(),
        "control": control.to(dtype).eval(),
        "dino": dino,
        "vae": AutoencoderKLWan.from_pretrained(location.wan, subfolder="vae", torch_dtype=torch.float32).eval(),
        "text_encoder": UMT5EncoderModel.from_pretrained(location.wan, subfolder="text_encoder", dtype=dtype).eval(),
        "tokenizer": AutoTokenizer.from_pretrained(location.wan, subfolder="tokenizer"),
    }


def build_parts(preset, model_path, dtype: torch.dtype, seed: int = 0) -> dict:
    """The parts of a C2R preset (keys as ``C2RPipeline`` reads them)."""
    from .. import tiny_trained

    if preset.name == tiny_trained.C2R_PRESET_NAME:
        return build_tiny_trained(model_path)
    return build_tiny(seed) if preset.is_tiny else load_real(model_path, dtype)


def build_tiny_trained(adapter: str | os.PathLike | None = None) -> dict:
    """tiny-trained-c2r: the tiny-trained base without its IC-LoRA, and a trained feature adapter folder
    (default: the committed one) with the encoder it was trained on."""
    from .. import tiny_trained
    from .trained_adapter import load_adapter

    parts = tiny_trained.load(with_lora=False)
    parts.update(load_adapter(adapter or tiny_trained.ADAPTER, parts["transformer"]))
    return parts


def build_tiny(seed: int = 0) -> dict:
    """tiny-c2r: the released architecture at toy width, random weights from ``seed``."""
    from diffusers import WanTransformer3DModel
    from transformers import DINOv3ViTModel

    from .. import registry

    preset = registry.get_preset("tiny-c2r")
    parts = registry.build_tiny("t2v", seed)  # tiny VAE, text encoder and tokenizer
    width = preset.transformer_config["num_attention_heads"] * preset.transformer_config["attention_head_dim"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1000 + 200)
        parts["transformer"] = WanTransformer3DModel(**preset.transformer_config).eval()
        parts["dino"] = DINOv3ViTModel(tiny_dino_config(TINY_DINO_WIDTH)).eval()
        parts["control"] = C2RControl(ControlShapes.for_models(TINY_DINO_WIDTH, width)).eval()
    return parts
