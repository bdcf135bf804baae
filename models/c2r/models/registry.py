"""Named Wan backbones: where their weights live and how to build them.

Every preset maps onto the same diffusers classes (``WanTransformer3DModel`` or
``WanVACETransformer3DModel``, ``AutoencoderKLWan``, ``UMT5EncoderModel``). The ``tiny``
presets are those classes at toy size with random, seedable weights, built in-process in
well under a second, so tests and CPU demos run the real code paths offline.

Real presets load offline-first from a local diffusers-format folder or the Hugging Face
cache; nothing is downloaded implicitly (``c2r models pull NAME`` does that), so a daemon
never stalls on a hidden multi-gigabyte download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .text_encoder import build_tiny_text_encoder

TINY_TEXT_DIM = 32

# Architecture figures of the released checkpoints (their transformer/config.json); the
# benchmark builds random-weight models of exactly these shapes.
_WAN_1_3B = dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, text_dim=4096)
_WAN_5B = dict(num_attention_heads=24, attention_head_dim=128, ffn_dim=14336, num_layers=30, text_dim=4096,
               in_channels=48, out_channels=48)
_WAN_14B = dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40, text_dim=4096)
_TINY = dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=48, num_layers=2, text_dim=TINY_TEXT_DIM,
             freq_dim=32, rope_max_seq_len=256)
_TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])


@dataclass(frozen=True)
class ModelPreset:
    name: str
    kind: str  # "t2v" (IC-LoRA backbone), "vace" (zero-shot control) or "c2r" (C2R, coarse_to_real/)
    repo_id: str | None  # None: built in-process (tiny)
    transformer_config: dict = field(default_factory=dict)
    experts: tuple[str, ...] = ("transformer",)  # A14B: high-noise "transformer", low-noise "transformer_2"
    boundary_ratio: float | None = None  # t >= boundary * 1000 -> high-noise expert
    params_billion: float = 0.0  # per expert
    max_sequence_length: int = 512
    vae_scale_spatial: int = 8  # pixels per latent cell (Wan2.2's TI2V VAE: 16)
    description: str = ""

    @property
    def is_tiny(self) -> bool:
        return self.repo_id is None

    @property
    def is_vace(self) -> bool:
        return self.kind == "vace"


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        ModelPreset("wan2.1-t2v-1.3b", "t2v", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", _WAN_1_3B, params_billion=1.3,
                    description="Wan2.1 text-to-video 1.3B, the smallest backbone"),
        ModelPreset("wan2.2-ti2v-5b", "t2v", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", _WAN_5B, params_billion=5.0,
                    vae_scale_spatial=16, description="Wan2.2 TI2V 5B with the 16x-compressing VAE"),
        ModelPreset("wan2.2-t2v-a14b", "t2v", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", _WAN_14B,
                    experts=("transformer", "transformer_2"), boundary_ratio=0.875, params_billion=14.0,
                    description="Wan2.2 A14B: two 14B experts (RealMaster's backbone)"),
        ModelPreset("wan2.1-vace-1.3b", "vace", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", _WAN_1_3B, params_billion=1.3,
                    description="VACE control (depth/edges) on Wan2.1 1.3B, zero-shot"),
        ModelPreset("wan2.1-vace-14b", "vace", "Wan-AI/Wan2.1-VACE-14B-diffusers", _WAN_14B, params_billion=14.0,
                    description="VACE control (depth/edges) on Wan2.1 14B, zero-shot"),
        ModelPreset("c2r", "c2r", "gonsaBRK/coarse2real", _WAN_14B, params_billion=14.0,
                    description="C2R (Coarse-to-Real): DINOv3-controlled Wan2.1-T2V-14B; weights CC BY-NC-ND 4.0, gated"),
        ModelPreset("tiny", "t2v", None, _TINY, max_sequence_length=32,
                    description="real Wan classes at toy size, random weights (tests, offline demos)"),
        ModelPreset("tiny-a14b", "t2v", None, _TINY, experts=("transformer", "transformer_2"), boundary_ratio=0.875,
                    max_sequence_length=32, description="two tiny experts with the A14B switch"),
        ModelPreset("tiny-vace", "vace", None, {**_TINY, "vace_layers": [0], "vace_in_channels": 96},
                    max_sequence_length=32, description="tiny VACE transformer, random weights"),
        ModelPreset("tiny-c2r", "c2r", None, {**_TINY, "num_layers": 14}, max_sequence_length=32,
                    description="tiny C2R (14-block Wan + 1-layer DINOv3), random weights"),
    ]
}

TINY_KINDS = {"t2v": "tiny", "a14b": "tiny-a14b", "vace": "tiny-vace"}


class ModelWeightsMissing(FileNotFoundError):
    """Weights for a preset are not on this machine (or are incomplete)."""


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(PRESETS)} (see `c2r models list`)") from None


def transformer_class(preset: ModelPreset):
    from diffusers import WanTransformer3DModel, WanVACETransformer3DModel

    return WanVACETransformer3DModel if preset.is_vace else WanTransformer3DModel


def build_tiny(kind: str = "t2v", seed: int = 0) -> dict:
    """Components of a tiny model, keyed as diffusers' Wan pipelines name them.

    ``WanPipeline(**components, scheduler=...)`` accepts the dict as is. Each expert gets its
    own seed so the two A14B experts really differ.
    """
    from diffusers import AutoencoderKLWan

    if kind not in TINY_KINDS:
        raise ValueError(f"kind={kind!r}: choose one of {sorted(TINY_KINDS)}")
    preset = PRESETS[TINY_KINDS[kind]]
    components: dict = {}
    with torch.random.fork_rng(devices=[]):
        for i, expert in enumerate(preset.experts):
            torch.manual_seed(seed * 1000 + i)
            components[expert] = transformer_class(preset)(**preset.transformer_config).eval()
        torch.manual_seed(seed * 1000 + 100)
        components["vae"] = AutoencoderKLWan(**_TINY_VAE).eval()
    components["tokenizer"], components["text_encoder"] = build_tiny_text_encoder(TINY_TEXT_DIM, seed)
    if preset.boundary_ratio is not None:
        components["boundary_ratio"] = preset.boundary_ratio
    return components


def local_path(preset: ModelPreset, path: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ``preset``'s weights: ``path`` if given, else the HF cache snapshot, else None."""
    if path is not None:
        return Path(path).expanduser()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(preset.repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def missing_files(preset: ModelPreset, folder: Path) -> list[str]:
    """The config files a diffusers-format folder of ``preset`` lacks (empty: complete enough to try)."""
    required = ["model_index.json", *(f"{e}/config.json" for e in preset.experts), "vae/config.json",
                "text_encoder/config.json"]
    return [f for f in required if not (folder / f).is_file()]


def _missing_error(preset: ModelPreset, folder: Path | None, detail: str) -> ModelWeightsMissing:
    where = str(folder) if folder else f"the Hugging Face cache ({preset.repo_id})"
    return ModelWeightsMissing(
        f"weights for {preset.name!r} not usable at {where}: {detail}. "
        f"Fix: run `c2r models pull {preset.name}` on a machine with internet"
        f"{' (or point --model-path at a diffusers-format folder)' if folder else ''}."
    )


def load_components(name: str, path: str | os.PathLike | None = None, dtype: torch.dtype = torch.bfloat16,
                    device: str | torch.device = "cpu", seed: int = 0) -> dict:
    """Components of preset ``name`` (keys as in ``build_tiny``), on ``device``.

    The VAE stays float32: Wan's VAE decodes visibly worse in bfloat16 and is small.
    """
    preset = get_preset(name)
    if preset.is_tiny:
        components = build_tiny({"tiny": "t2v", "tiny-a14b": "a14b", "tiny-vace": "vace"}[name], seed)
    else:
        components = _load_pretrained(preset, path, dtype)
    for key in (*preset.experts, "text_encoder"):
        _move(components[key], device, dtype)
    _move(components["vae"], device, torch.float32)
    return components


def _move(module: torch.nn.Module, device, dtype: torch.dtype) -> None:
    """Move without a needless dtype cast (diffusers warns on casts that touch its fp32-kept modules)."""
    module.to(device) if next(module.parameters()).dtype == dtype else module.to(device=device, dtype=dtype)


def _load_pretrained(preset: ModelPreset, path, dtype: torch.dtype) -> dict:
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    folder = local_path(preset, path)
    if folder is None or not folder.is_dir():
        raise _missing_error(preset, folder, "no such folder" if folder else "not downloaded")
    missing = missing_files(preset, folder)
    if missing:
        raise _missing_error(preset, folder, f"missing {', '.join(missing)}")
    try:
        components = {e: transformer_class(preset).from_pretrained(folder, subfolder=e, torch_dtype=dtype)
                      for e in preset.experts}
        components["vae"] = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
        components["text_encoder"] = UMT5EncoderModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype)
        components["tokenizer"] = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
    except (OSError, ValueError, RuntimeError) as err:
        raise _missing_error(preset, folder, f"corrupt or incomplete ({type(err).__name__}: {err})") from err
    if preset.boundary_ratio is not None:
        components["boundary_ratio"] = preset.boundary_ratio
    return components


def folder_size_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
