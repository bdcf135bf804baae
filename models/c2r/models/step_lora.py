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
import warnings
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


def load_step_lora(components: dict, path: str | os.PathLike, weight: float = 1.0,
                   low_noise_path: str | os.PathLike | None = None) -> list[str]:
    """Add the distilled LoRA to every expert in ``components``; returns the experts it went into.

    The public 4-step LoRAs for A14B ship one file per expert: ``path`` is the high-noise
    (or only) one, ``low_noise_path`` the low-noise expert's; without it ``path`` serves both.
    Its strength is ``weight``; adapters already on an expert (the IC-LoRA) keep weight 1.
    """
    files = {"transformer": path, "transformer_2": low_noise_path or path}
    loaded = []
    for expert, file in files.items():
        transformer = components.get(expert)
        if transformer is None:
            continue
        state = read_step_lora(file)
        others = [name for name in getattr(transformer, "peft_config", {}) if name != STEP_ADAPTER_NAME]
        with warnings.catch_warnings():  # peft warns about a second adapter: here that is the point
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            transformer.load_lora_adapter(state, prefix="transformer", adapter_name=STEP_ADAPTER_NAME)
        transformer.set_adapters(others + [STEP_ADAPTER_NAME], [1.0] * len(others) + [weight])
        loaded.append(expert)
    return loaded
