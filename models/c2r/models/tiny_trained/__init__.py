"""The ``tiny-trained`` preset: the real Wan classes at toy size, trained on the synthetic testbed.

Unlike ``tiny`` (random weights), these weights were trained on the CPU
(``c2r.models.research.testbed_train``): a Wan VAE for the testbed's clips, a base transformer
pretrained to denoise its "real" clips, and an IC-LoRA merged into it that turns the testbed's
coarse renders into its "real" look (``lora/``, in `c2r train`'s format, loaded on top). The weights ship in this folder (a few MB of
safetensors, package data), so a fresh install's first `c2r realify` shows a visible
coarse-to-real change. A demo of the path on synthetic scenes, not a model of real footage.

``adapter/`` is the ``tiny-trained-c2r`` preset's part: a C2R-style feature adapter (released key
layout) trained on the same base, frozen, over a random-weight DINOv3 STAND-IN: `c2r train --set
model=tiny-trained --set conditioning=feature-adapter --set resolution=native --set num_frames=17
--set max_steps=4000 --set warmup_steps=200 --set learning_rate=3e-3 --set timestep_shift=3.0
--set gradient_checkpointing=False` on ``testbed.write_dataset`` seeds 0-31 (17 frames), seed 0,
4:20 on one CPU thread; stored as float16.
"""

from __future__ import annotations

import json
from pathlib import Path

PRESET_NAME = "tiny-trained"
C2R_PRESET_NAME = "tiny-trained-c2r"  # the same base with a C2R-style feature adapter instead of the IC-LoRA
WEIGHTS = Path(__file__).resolve().parent
ADAPTER = WEIGHTS / "adapter"  # the feature adapter (`c2r train --set conditioning='feature-adapter'`), released layout
TEXT_DIM = 32
# 4x spatial (not Wan's 8x) and 4x temporal compression: at the testbed's 48x64 frames, 12x16 latents
VAE_CONFIG = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[True, True],
                  scale_factor_spatial=4)
TRANSFORMER_CONFIG = dict(num_attention_heads=4, attention_head_dim=32, ffn_dim=512, num_layers=3, text_dim=TEXT_DIM,
                          freq_dim=32, rope_max_seq_len=256)
FILES = ("transformer.safetensors", "vae.safetensors", "text_encoder.safetensors", "preset.json",
         "lora/pytorch_lora_weights.safetensors")


class TinyTrainedMissing(FileNotFoundError):
    """The preset's weight files are not beside this module (a broken install or checkout)."""


def build_components(seed: int = 0) -> dict:
    """The preset's components with freshly initialised (seeded) weights: what training starts from."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from c2r.models.text_encoder import build_tiny_text_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1000)
        transformer = WanTransformer3DModel(**TRANSFORMER_CONFIG).eval()
        torch.manual_seed(seed * 1000 + 100)
        vae = AutoencoderKLWan(**VAE_CONFIG).eval()
    tokenizer, text_encoder = build_tiny_text_encoder(TEXT_DIM, seed)
    return {"transformer": transformer, "vae": vae, "tokenizer": tokenizer, "text_encoder": text_encoder}


def load(folder: str | Path = WEIGHTS, with_lora: bool = True) -> dict:
    """The trained components (keys as ``registry.build_tiny``'s), from ``folder``'s safetensors,
    with the shipped IC-LoRA (trained in ``full`` attention, the default mode) loaded into the
    transformer; ``with_lora=False``: the base denoiser alone (what the LoRA was trained on)."""
    from safetensors.torch import load_file

    from c2r.models.lora import load_lora

    folder = Path(folder)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise TinyTrainedMissing(f"the {PRESET_NAME!r} preset's weights are incomplete in {folder}: missing {', '.join(missing)}. "
                                 "Reinstall coarse2real (the files are package data), or rebuild them with "
                                 "`python benchmarks/bench_testbed.py --save-preset`.")
    info = json.loads((folder / "preset.json").read_text())
    components = build_components()
    for key in ("transformer", "vae", "text_encoder"):
        state = {k: v.float() for k, v in load_file(folder / f"{key}.safetensors").items()}
        components[key].load_state_dict(state)
    components["vae"].register_to_config(latents_mean=info["latents_mean"], latents_std=info["latents_std"])
    if with_lora:
        load_lora(folder / "lora", components)
    return components


def save(folder: str | Path, components: dict, lora: str | Path, info: dict) -> Path:
    """Write the preset: the base components (no adapter) as float16 safetensors, the IC-LoRA folder
    ``lora`` (from `c2r train`) as lora/, and preset.json (latent statistics, provenance)."""
    import shutil

    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("transformer", "vae", "text_encoder"):
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in components[key].state_dict().items()}
        save_file(state, folder / f"{key}.safetensors")
    vae_config = components["vae"].config
    full = {**info, "latents_mean": list(vae_config.latents_mean), "latents_std": list(vae_config.latents_std)}
    (folder / "preset.json").write_text(json.dumps(full, indent=2) + "\n")
    shutil.rmtree(folder / "lora", ignore_errors=True)
    (folder / "lora").mkdir()
    shutil.copy(Path(lora) / "pytorch_lora_weights.safetensors", folder / "lora")
    return folder


def replace_vae(folder: str | Path, vae, note: str, facts: dict | None = None) -> Path:
    """Write ``vae`` as the preset's vae.safetensors (float16) and record ``note`` (and ``facts``) in
    preset.json. For a VAE whose encoder is unchanged (``refine_decoder``): the latents, their
    statistics and the transformer trained on them stay as they are."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in vae.state_dict().items()}, folder / "vae.safetensors")
    info = json.loads((folder / "preset.json").read_text())
    info["facts"]["vae_refined"] = note
    info["facts"].update(facts or {})
    (folder / "preset.json").write_text(json.dumps(info, indent=2) + "\n")
    return folder
