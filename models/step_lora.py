"""Step-distilled LoRAs (4-step Wan LoRAs such as lightx2v's) as a second adapter beside the IC-LoRA.

A distilled LoRA lets the backbone denoise in a handful of steps without CFG, which is what
makes the ``preview`` quality fast. Public files come in several key layouts (diffusers,
the original Wan ``diffusion_model.*`` names with ``lora_down``/``lora_up``/``alpha``, musubi's
``lora_unet_*``); diffusers' Wan loader converts all of them, so this module only reads the
file through it and adds the result as a named peft adapter on each expert. The IC-LoRA (if
any) stays active; both adapters' weights are set together.
"""

from __future__ import annotations

import os
from pathlib import Path

STEP_ADAPTER_NAME = "c2r_step_distill"


def read_step_lora(path: str | os.PathLike) -> dict:
    """The LoRA at ``path`` (a .safetensors file) as a diffusers-format state dict."""
    from diffusers import WanPipeline

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"step-distilled LoRA {path} not found: pass the path of its .safetensors file "
                                "(for example a 4-step Wan LoRA downloaded beforehand)")
    state = WanPipeline.lora_state_dict(str(path.parent), weight_name=path.name, local_files_only=True)
    if not state:
        raise ValueError(f"{path} holds no LoRA weights diffusers' Wan loader recognises; "
                         "expected diffusers, original-Wan (diffusion_model.*) or musubi (lora_unet_*) keys")
    return state


def load_step_lora(components: dict, path: str | os.PathLike, weight: float = 1.0) -> list[str]:
    """Add the distilled LoRA to every expert in ``components``; returns the experts it went into.

    A single file serves both A14B experts (the public 4-step LoRAs for A14B ship one file per
    expert; pass the high-noise one here, or train both from one). Its strength is ``weight``;
    any adapters already on an expert (the IC-LoRA) keep their own weights.
    """
    state = read_step_lora(path)
    loaded = []
    for expert in ("transformer", "transformer_2"):
        transformer = components.get(expert)
        if transformer is None:
            continue
        others = [name for name in getattr(transformer, "peft_config", {}) if name != STEP_ADAPTER_NAME]
        transformer.load_lora_adapter(dict(state), prefix="transformer", adapter_name=STEP_ADAPTER_NAME)
        transformer.set_adapters(others + [STEP_ADAPTER_NAME], [1.0] * len(others) + [weight])
        loaded.append(expert)
    return loaded
