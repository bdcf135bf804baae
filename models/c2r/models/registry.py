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

from . import tiny_trained

TINY_TEXT_DIM = 32

# Architecture figures of the released checkpoints (their transformer/config.json); the
# benchmark builds random-weight models of exactly these shapes.
_WAN_1_3B = dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, text_dim=4096)
_WAN_5B = dict(num_attention_heads=24, attention_head_dim=128, ffn_dim=14336, num_layers=30, text_dim=4096,
               in_channels=48, out_channels=48)
_WAN_14B = dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40, text_dim=4096)
_VACE_1_3B = {**_WAN_1_3B, "vace_layers": list(range(0, 30, 2)), "vace_in_channels": 96}  # 15 VACE blocks
_VACE_14B = {**_WAN_14B, "vace_layers": list(range(0, 40, 5)), "vace_in_channels": 96}  # 8 VACE blocks
_TINY = dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=48, num_layers=2, text_dim=TINY_TEXT_DIM,
             freq_dim=32, rope_max_seq_len=256)
_TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
# The released VAE configs (vae/config.json; the latent statistics are the checkpoint's own): Wan2.1's
# is diffusers' default; Wan2.2 TI2V's compresses 16x, 48 latent channels, patchified 2x2 pixels.
VAE_CONFIGS = {
    "wan2.1": {},
    "wan2.2": dict(base_dim=160, decoder_base_dim=256, z_dim=48, in_channels=12, out_channels=12, patch_size=2,
                   scale_factor_spatial=16, is_residual=True, latents_mean=[
                       -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
                       0.0891, 0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
                       -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313,
                       -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
                       0.3573, -0.0548, -0.1681, -0.0667], latents_std=[
                       0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
                       0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
                       0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
                       0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744]),
    "tiny": _TINY_VAE,
}
# Parameter counts, exact for the released configs (counted on the meta device; tests/test_real_width.py checks them).
UMT5_XXL_ENCODER_PARAMS = 5_680_910_336
VAE_PARAMS = {"wan2.1": 126_892_531, "wan2.2": 704_688_668, "tiny": 13_861, "tiny-trained": 177_699}
TINY_TEXT_ENCODER_PARAMS = 24_688


@dataclass(frozen=True)
class Footprint:
    """What the memory planner (``memory_plan``) needs to know of a preset's weights.

    expert_params: one transformer (each A14B expert); block_params: its largest block (what
    group offload streams at a time; a VACE block when larger); text_encoder_params: run in the
    model dtype; vae: a key of ``VAE_PARAMS`` (the VAE runs in float32). ``extra_params``: any
    further component resident with the transformer (a control encoder, an adapter), by name.
    ``held_per_token``: values per noisy token a kind keeps for the whole window (in the model dtype).
    """

    expert_params: int
    block_params: int
    text_encoder_params: int = UMT5_XXL_ENCODER_PARAMS
    vae: str = "wan2.1"
    extra_params: tuple[tuple[str, int], ...] = ()
    held_per_token: int = 0  # values per noisy token held through the whole denoise (C2R's control tokens: dim)


@dataclass(frozen=True)
class ModelPreset:
    name: str
    kind: str  # "t2v" (IC-LoRA backbone), "vace" (zero-shot control) or "c2r" (C2R, coarse_to_real/)
    repo_id: str | None  # None: built in-process (tiny)
    transformer_config: dict = field(default_factory=dict)
    experts: tuple[str, ...] = ("transformer",)  # A14B: high-noise "transformer", low-noise "transformer_2"
    boundary_ratio: float | None = None  # t >= boundary * 1000 -> high-noise expert
    footprint: Footprint = Footprint(0, 0)
    max_sequence_length: int = 512
    vae_scale_spatial: int = 8  # pixels per latent cell (Wan2.2's TI2V VAE: 16)
    shift: float = 5.0  # the flow-matching timestep shift the model was released with
    guidance_2: float | None = None  # A14B: the low-noise expert's guidance (Wan2.2: 3.0 where the high one is 4.0)
    description: str = ""

    @property
    def vae_config(self) -> dict:
        return VAE_CONFIGS[self.footprint.vae]

    @property
    def grid_multiple(self) -> int:
        """Pixels per transformer token side: the VAE's compression x the 2x2 patch."""
        return self.vae_scale_spatial * 2

    @property
    def is_tiny(self) -> bool:
        return self.repo_id is None

    @property
    def is_vace(self) -> bool:
        return self.kind == "vace"


# C2R's control path beside the 14B transformer: DINOv3 ViT-B/16 and the released adapter +
# bridge (C2R.md's shapes: 44,334,592 values); the tiny C2R is the tiny Wan at 14 blocks.
C2R_EXTRA_PARAMS = (("dinov3-vitb16", 85_660_416), ("dino adapter + bridge", 44_334_592))
_TINY_FOOTPRINT = dict(expert_params=24_520, block_params=7_464, text_encoder_params=TINY_TEXT_ENCODER_PARAMS, vae="tiny")
TINY_C2R_EXPERT_PARAMS = _TINY_FOOTPRINT["expert_params"] + 12 * _TINY_FOOTPRINT["block_params"]
TINY_TRAINED_FOOTPRINT = dict(expert_params=953_408, block_params=265_344, text_encoder_params=TINY_TEXT_ENCODER_PARAMS,
                              vae="tiny-trained")
# tiny-trained-c2r's control path: the DINOv3 stand-in (dino.StandinDino) and its adapter + bridge (96 -> 128 wide)
TINY_TRAINED_C2R_EXTRA_PARAMS = (("dinov3 stand-in (random weights)", 169_056), ("feature adapter + bridge", 104_128))

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        ModelPreset("wan2.1-t2v-1.3b", "t2v", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", _WAN_1_3B,
                    footprint=Footprint(1_418_996_800, 46_440_704),
                    description="Wan2.1 text-to-video 1.3B, the smallest backbone"),
        ModelPreset("wan2.2-ti2v-5b", "t2v", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", _WAN_5B,
                    footprint=Footprint(4_999_787_712, 163_656_704, vae="wan2.2"),
                    vae_scale_spatial=16, description="Wan2.2 TI2V 5B with the 16x-compressing VAE"),
        ModelPreset("wan2.2-t2v-a14b", "t2v", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", _WAN_14B,
                    experts=("transformer", "transformer_2"), boundary_ratio=0.875,
                    footprint=Footprint(14_288_491_584, 351_394_304), shift=12.0, guidance_2=3.0,
                    description="Wan2.2 A14B: two 14B experts (RealMaster's backbone)"),
        ModelPreset("wan2.1-vace-1.3b", "vace", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", _VACE_1_3B,
                    footprint=Footprint(2_153_972_032, 51_162_368),
                    description="VACE control (depth/edges) on Wan2.1 1.3B, zero-shot"),
        ModelPreset("wan2.1-vace-14b", "vace", "Wan-AI/Wan2.1-VACE-14B-diffusers", _VACE_14B,
                    footprint=Footprint(17_337_592_896, 403_833_344),
                    description="VACE control (depth/edges) on Wan2.1 14B, zero-shot"),
        ModelPreset("c2r", "c2r", "gonsaBRK/coarse2real", _WAN_14B,
                    footprint=Footprint(14_288_491_584, 351_394_304, extra_params=C2R_EXTRA_PARAMS, held_per_token=5120),
                    description="C2R (Coarse-to-Real): DINOv3-controlled Wan2.1-T2V-14B; weights CC BY-NC-ND 4.0, gated"),
        ModelPreset("tiny", "t2v", None, _TINY, footprint=Footprint(**_TINY_FOOTPRINT), max_sequence_length=32,
                    description="real Wan classes at toy size, random weights (tests, offline demos)"),
        ModelPreset("tiny-a14b", "t2v", None, _TINY, experts=("transformer", "transformer_2"), boundary_ratio=0.875,
                    footprint=Footprint(**_TINY_FOOTPRINT), max_sequence_length=32, shift=12.0, guidance_2=3.0,
                    description="two tiny experts with the A14B switch"),
        ModelPreset("tiny-vace", "vace", None, {**_TINY, "vace_layers": [0], "vace_in_channels": 96},
                    footprint=Footprint(**{**_TINY_FOOTPRINT, "expert_params": 42_424, "block_params": 8_664}), max_sequence_length=32,
                    description="tiny VACE transformer, random weights"),
        ModelPreset("tiny-c2r", "c2r", None, {**_TINY, "num_layers": 14},
                    footprint=Footprint(**{**_TINY_FOOTPRINT, "expert_params": TINY_C2R_EXPERT_PARAMS}), max_sequence_length=32,
                    description="tiny C2R (14-block Wan + 1-layer DINOv3), random weights"),
        ModelPreset(tiny_trained.PRESET_NAME, "t2v", None, tiny_trained.TRANSFORMER_CONFIG, max_sequence_length=32,
                    footprint=Footprint(**TINY_TRAINED_FOOTPRINT), vae_scale_spatial=4,
                    description="tiny Wan classes trained on the synthetic testbed (coarse -> its 'real' look)"),
        ModelPreset(tiny_trained.C2R_PRESET_NAME, "c2r", None, tiny_trained.TRANSFORMER_CONFIG, max_sequence_length=32,
                    footprint=Footprint(**TINY_TRAINED_FOOTPRINT, extra_params=TINY_TRAINED_C2R_EXTRA_PARAMS,
                                        held_per_token=128), vae_scale_spatial=4,
                    description="the tiny-trained base with a C2R-style feature adapter over a random-weight DINOv3 "
                                "stand-in, trained on the synthetic testbed"),
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
    import torch
    from diffusers import AutoencoderKLWan

    from .text_encoder import build_tiny_text_encoder

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
        f"{', or check that folder is a complete diffusers-format copy' if folder else ''}"
        f"{', or pass --model-path DIR (c2r serve / c2r realify) for a diffusers-format folder' if not folder else ''}."
    )


def load_components(name: str, path: str | os.PathLike | None = None, dtype=None, device="cpu", seed: int = 0) -> dict:
    """Components of preset ``name`` (keys as in ``build_tiny``), on ``device``, in ``dtype`` (default bfloat16).

    The VAE stays float32: Wan's VAE decodes visibly worse in bfloat16 and is small. Modules a
    class keeps in float32 (diffusers' and transformers' ``_keep_in_fp32_modules``: Wan's
    modulation tables, time embedder and norms; T5's output projections) stay float32.
    """
    import torch

    dtype = dtype or torch.bfloat16
    preset = get_preset(name)
    if preset.kind == "c2r":
        raise ValueError(f"{name!r} is a C2R preset with parts of its own: load it with create_backend({name!r})")
    if name == tiny_trained.PRESET_NAME:
        components = tiny_trained.load()
    elif preset.is_tiny:
        components = build_tiny({"tiny": "t2v", "tiny-a14b": "a14b", "tiny-vace": "vace"}[name], seed)
    else:
        components = _load_pretrained(preset, path, dtype)
    for key in (*preset.experts, "text_encoder"):
        place(components[key], device, dtype)
    place(components["vae"], device, torch.float32)
    return components


def place(module, device, dtype) -> None:
    """Move ``module`` to ``device`` and its floating parameters to ``dtype``, except those its class keeps float32.

    Casting the whole module (``module.to(dtype)``) would also cast what diffusers loads in
    float32 on purpose; an already-right dtype is never touched.
    """
    import torch

    keep = set(getattr(module, "_keep_in_fp32_modules", None) or ())
    module.to(device)
    for name, param in module.named_parameters():
        target = torch.float32 if keep.intersection(name.split(".")) else dtype
        if param.is_floating_point() and param.dtype != target:
            param.data = param.data.to(target)


def _load_pretrained(preset: ModelPreset, path, dtype) -> dict:
    import torch
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


def with_model_defaults(config, preset: ModelPreset):
    """``config`` with what it leaves to the model filled in: the release shift and A14B's low-noise guidance."""
    from dataclasses import replace

    guidance_2 = config.guidance_2
    if guidance_2 is None and preset.guidance_2 is not None and config.guidance > 1.0:
        guidance_2 = preset.guidance_2
    return replace(config, shift=preset.shift if config.shift is None else config.shift, guidance_2=guidance_2)
