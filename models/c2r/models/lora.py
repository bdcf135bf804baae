"""The IC-LoRA's LoRA: peft adapters on the Wan transformer(s), saved in diffusers' format.

A LoRA folder holds one safetensors file per expert, in the layout diffusers' Wan loader
reads, so the same folder works outside coarse2real too::

    pipe.load_lora_weights(folder)                                             # transformer
    pipe.load_lora_weights(folder, weight_name=EXPERT_WEIGHT_NAMES["transformer_2"],
                           load_into_transformer_2=True)                       # A14B low-noise expert

Each file's safetensors header also records, under ``c2r``, what inference must reproduce:
rank, the attention mode it was trained with (``causal-ref`` LoRAs must run with that mask)
and which conditions were reference clips, in order.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from safetensors import safe_open

from .backend import ATTENTION_MODES, REFERENCE_CONDITIONS

ADAPTER_NAME = "c2r_iclora"
# Self- and cross-attention projections and both feed-forward linears of every Wan block.
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
EXPERT_WEIGHT_NAMES = {
    "transformer": "pytorch_lora_weights.safetensors",
    "transformer_2": "pytorch_lora_weights_transformer_2.safetensors",
}
METADATA_KEY = "c2r"


@dataclass(frozen=True)
class LoraInfo:
    """What a trained IC-LoRA needs at inference (stored in each weights file)."""

    rank: int
    attention_mode: str = "full"
    reference: tuple[str, ...] = ("color",)
    base_model: str = ""
    reference_downscales: tuple[int, ...] = (1,)  # reference sizes it was trained with (1: full, 2: half each side)

    def __post_init__(self):
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"LoRA attention_mode={self.attention_mode!r}: expected one of {ATTENTION_MODES}")
        bad = [r for r in self.reference if r not in REFERENCE_CONDITIONS]
        if bad or not self.reference:
            raise ValueError(f"LoRA reference={self.reference}: expected one or more of {REFERENCE_CONDITIONS}")


def add_lora(transformer, rank: int = 32, alpha: float | None = None, targets=DEFAULT_TARGETS,
             init_weights: bool | str = True) -> None:
    """Attach a trainable LoRA (peft) to a Wan transformer; alpha defaults to the rank (scale 1).

    ``init_weights=True`` is peft's standard init (B = 0: the LoRA starts as a no-op).
    """
    from peft import LoraConfig

    if rank < 1:
        raise ValueError(f"LoRA rank={rank}: use a positive rank (the paper uses 32)")
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=list(targets), init_lora_weights=init_weights)
    transformer.add_adapter(config, adapter_name=ADAPTER_NAME)


def save_lora(folder: str | os.PathLike, experts: dict, info: LoraInfo) -> Path:
    """Write the LoRA of each expert in ``experts`` (name -> transformer with an adapter)."""
    from diffusers import WanPipeline
    from peft.utils import get_peft_model_state_dict

    folder = Path(folder)
    for name, transformer in experts.items():
        if name not in EXPERT_WEIGHT_NAMES:
            raise ValueError(f"expert {name!r}: expected one of {sorted(EXPERT_WEIGHT_NAMES)}")
        WanPipeline.save_lora_weights(
            folder,
            transformer_lora_layers=get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME),
            weight_name=EXPERT_WEIGHT_NAMES[name],
            transformer_lora_adapter_metadata=transformer.peft_config[ADAPTER_NAME].to_dict(),
        )
        _add_header_entry(folder / EXPERT_WEIGHT_NAMES[name], METADATA_KEY, json.dumps(asdict(info)))
    return folder


def _add_header_entry(path: Path, key: str, value: str) -> None:
    from safetensors.torch import load_file, save_file

    with safe_open(path, framework="numpy") as f:
        header = dict(f.metadata() or {})
    save_file(load_file(path), path, metadata={**header, key: value})


def read_lora_info(folder: str | os.PathLike) -> LoraInfo:
    """The c2r metadata of a LoRA folder (from its high-noise/only expert file)."""
    path = _weights_file(Path(folder), "transformer")
    with safe_open(path, framework="numpy") as f:  # the header only: no torch needed (`c2r plan` reads it)
        raw = (f.metadata() or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no c2r metadata: it was not saved by coarse2real's save_lora, so its "
                         "attention mode and reference conditions are unknown; re-save it with save_lora")
    data = json.loads(raw)
    data["reference"] = tuple(data["reference"])
    data["reference_downscales"] = tuple(data.get("reference_downscales", (1,)))  # older files: full size only
    return LoraInfo(**data)


def _weights_file(folder: Path, expert: str) -> Path:
    path = folder / EXPERT_WEIGHT_NAMES[expert]
    if not path.is_file():
        raise FileNotFoundError(f"LoRA weights {path} not found: pass the folder written by `c2r train` (save_lora)")
    return path


def load_lora(folder: str | os.PathLike, components: dict) -> LoraInfo:
    """Load a LoRA folder into the components' transformer(s); returns its metadata.

    A folder with a single file serves both A14B experts: the low-noise expert must also
    learn to read reference tokens, so one shared LoRA is applied to each.
    """
    folder = Path(folder)
    info = read_lora_info(folder)
    for expert in ("transformer", "transformer_2"):
        if components.get(expert) is None:
            continue
        own = folder / EXPERT_WEIGHT_NAMES[expert]
        weight_name = own.name if own.is_file() else EXPERT_WEIGHT_NAMES["transformer"]
        components[expert].load_lora_adapter(folder, prefix="transformer", weight_name=weight_name,
                                              adapter_name=ADAPTER_NAME, local_files_only=True)
    return info
