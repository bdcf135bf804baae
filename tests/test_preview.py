"""Interactive preview: the preview preset and backbone, cheap x0 previews, downscaled reference tokens."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from c2r.models.backend import QUALITY_PRESETS, GBuffers, RealifyConfig, apply_quality, WindowRequest
from c2r.models.backend import preview_model_for
from c2r.models.backends import create_backend
from c2r.models.iclora import ICLoRAWan, rope_at
from c2r.models.latent_preview import LatentToRGB
from c2r.models.levers import Levers
from c2r.models.pipeline import RealifyPipeline
from c2r.models.registry import PRESETS, build_tiny
from test_pipeline import moving_square




class LinearVAEDouble(torch.nn.Module):
    """A stand-in for Wan's VAE whose decode really inverts its encode (a random tiny VAE does not).

    Encode: each 8x8 cell's mean colour (first frame alone, then groups of 4, as Wan's causal
    VAE groups them) mixed linearly into 16 channels. Decode: the pseudo-inverse, nearest-
    neighbour upsampled. So the full-decode preview is a true picture of the latents and the
    cheap preview can be compared with it.
    """

    spatial_compression_ratio = 8

    def __init__(self):
        super().__init__()
        self.register_buffer("mix", torch.randn(3, 16, generator=torch.Generator().manual_seed(1)))
        self.config = SimpleNamespace(latents_mean=[0.0] * 16, latents_std=[1.0] * 16, z_dim=16)

    @property
    def device(self):
        return self.mix.device

    @property
    def dtype(self):
        return self.mix.dtype

    def encode(self, video):
        first, rest = video[:, :, :1], video[:, :, 1:].unflatten(2, (-1, 4)).mean(3)
        cells = F.avg_pool3d(torch.cat([first, rest], 2), (1, 8, 8))
        latents = torch.einsum("brfhw,rc->bcfhw", cells, self.mix)
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: latents))

    def decode(self, latents):
        cells = torch.einsum("bcfhw,cr->brfhw", latents, torch.linalg.pinv(self.mix))
        frames = torch.cat([cells[:, :, :1], cells[:, :, 1:].repeat_interleave(4, dim=2)], 2)
        return SimpleNamespace(sample=frames.repeat_interleave(8, 3).repeat_interleave(8, 4))


def previews(decoder: str, clip, config) -> list[np.ndarray]:
    components = build_tiny("t2v")
    components["vae"] = LinearVAEDouble()
    pipeline = RealifyPipeline(components, levers=Levers(preview_decoder=decoder))
    shown = []
    pipeline(clip, config, on_step=lambda step, steps, preview: shown.append(preview) if preview is not None else None)
    return shown


def colorful_clip(frames: int = 9, size: int = 64) -> GBuffers:
    """Random colours per 8x8 cell: a window whose colours span RGB (a real scene's do)."""
    cells = np.random.default_rng(4).integers(0, 256, (frames, size // 8, size // 8, 3), dtype=np.uint8)
    return GBuffers(cells.repeat(8, axis=1).repeat(8, axis=2))


def test_cheap_preview_matches_the_full_decode_preview():
    clip = colorful_clip()
    config = RealifyConfig(steps=4, guidance=1.0, resolution="native", preview_every=1)
    full, cheap = previews("vae", clip, config), previews("latent", clip, config)
    assert len(full) == len(cheap) == 3  # every step but the last (whose result is the frames themselves)
    for a, b in zip(full, cheap):
        assert a.shape == b.shape == (9, 64, 64, 3) and b.dtype == np.uint8
        r = np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]
        # not 1: the double upsamples nearest, the preview bilinear, and a random model's x0 is cell-level noise
        assert r > 0.8, f"cheap preview correlates {r:.3f} with the full decode"


def test_linear_fit_recovers_a_known_latent_to_rgb_map():
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, 3, 4, 4, generator=gen)
    weight, bias = torch.randn(16, 3, generator=gen) * 0.1, torch.tensor([0.1, -0.2, 0.05])
    cells = torch.einsum("bcfhw,cr->brfhw", latents, weight) + bias.view(1, 3, 1, 1, 1)
    video = torch.cat([cells[:, :, :1], cells[:, :, 1:].repeat_interleave(4, 2)], 2)
    video = video.repeat_interleave(8, 3).repeat_interleave(8, 4)  # (1, 3, 9, 32, 32)
    fit = LatentToRGB.fit(latents, video)
    torch.testing.assert_close(fit.weight, weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fit.bias, bias, atol=1e-4, rtol=1e-4)
    assert fit(latents, 9, 32, 32).shape == (1, 3, 9, 32, 32)


def test_preview_preset_and_backbone():
    config = apply_quality(RealifyConfig(), "preview")
    assert config.steps == 4 and config.guidance <= 1.0 and config.resolution == "480p"
    assert config.reference_downscale == 2 and config.preview_every >= 1
    assert QUALITY_PRESETS["final"].get("reference_downscale", 1) == 1
    small = preview_model_for("wan2.2-t2v-a14b")
    assert small == "wan2.1-t2v-1.3b"
    assert PRESETS[small].vae_scale_spatial == PRESETS["wan2.2-t2v-a14b"].vae_scale_spatial  # same VAE family
    assert preview_model_for("wan2.2-ti2v-5b") == "wan2.2-ti2v-5b"  # its own 48-channel VAE


# --- reference tokens at reduced resolution ----------------------------------------------------
@pytest.fixture()
def ic():
    return ICLoRAWan(build_tiny("t2v", seed=3)["transformer"], "full")


def test_rope_at_integer_positions_is_wans_own_table(ic):
    latents = torch.zeros(1, 16, 3, 8, 12)
    cos, sin = rope_at(ic.transformer.rope, torch.arange(3), torch.arange(4), torch.arange(6))
    own_cos, own_sin = ic.transformer.rope(latents)
    torch.testing.assert_close(cos, own_cos)
    torch.testing.assert_close(sin, own_sin)


def test_downscaled_reference_tokens_sit_on_the_target_tokens_they_cover(ic):
    noisy, ref = torch.randn(1, 16, 3, 8, 8), torch.randn(1, 16, 3, 4, 4)  # 3x4x4 noisy tokens, 3x2x2 reference
    inputs = ic.prepare(noisy, [ref], torch.tensor(500.0))
    assert inputs.num_noisy == 48 and inputs.tokens.shape[1] == 48 + 12  # a quarter of the reference tokens
    cos, sin = inputs.rope
    target_cos = cos[0, :48, 0].view(3, 4, 4, -1)
    target_sin = sin[0, :48, 0].view(3, 4, 4, -1)
    ref_cos, ref_sin = cos[0, 48:, 0].view(3, 2, 2, -1), sin[0, 48:, 0].view(3, 2, 2, -1)
    torch.testing.assert_close(ref_cos, target_cos[:, ::2, ::2])  # token (f, i, j) at target (f, 2i, 2j)
    torch.testing.assert_close(ref_sin, target_sin[:, ::2, ::2])
    assert ic(noisy, [ref], torch.tensor(500.0), torch.randn(1, 32, 32)).shape == noisy.shape


def test_cached_downscaled_references_equal_the_masked_joint_pass(ic):
    ic.attention_mode = "causal-ref"
    noisy, ref, text = torch.randn(1, 16, 3, 8, 8), torch.randn(1, 16, 3, 4, 4), torch.randn(1, 32, 32)
    with torch.no_grad():
        joint = ic(noisy, [ref], torch.tensor(500.0), text)
        cached = ic(noisy, [], torch.tensor(500.0), text, cache=ic.encode_references([ref], target=noisy))
    torch.testing.assert_close(cached, joint, atol=1e-5, rtol=1e-4)


def test_pipeline_with_downscaled_references_returns_frames_one_to_one():
    backend = create_backend("tiny")
    backend.load("cpu")
    lengths = []
    block = backend.pipeline.experts["transformer"].transformer.blocks[0]
    block.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    clip = moving_square(9, size=64)
    for strength in (1.0, 0.5):
        config = RealifyConfig(steps=2, guidance=1.0, resolution="native", reference_downscale=2, strength=strength)
        assert backend.realify_window(WindowRequest(clip, config)).shape == (9, 64, 64, 3)
    assert lengths == [48 + 12] * 3  # strength 0.5 runs one of the two steps
    with pytest.raises(ValueError, match="reference_downscale=3"):
        RealifyConfig(reference_downscale=3).validate()


def test_bench_preview_runs_end_to_end_and_prints_one_json_line():
    """The CPU part of benchmarks/bench_preview.py at toy size (the GPU part needs CUDA).

    Checks what the report claims, never how fast anything was (timing belongs to the
    benchmark): its "chosen" row is the engine's own lever choice, every figure is a median
    inside its rounds' range, and the labels say what the figures are.
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    from c2r.models.memory_plan import levers_for

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_preview.py"
    args = ["--frames", "5", "--height", "32", "--width", "32", "--lever-steps", "2", "--threads", "1", "--skip", "compile_blocks",
            "--rounds", "2"]
    done = subprocess.run([sys.executable, str(bench), *args], capture_output=True, text=True, timeout=300, cwd=bench.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["chosen_levers"] == str(levers_for("cpu", "tiny"))
    assert set(report["presets"]) == {"plain", "chosen"}
    assert {"batched_cfg", "causal_ref", "step_cache=first-block", "step_cache=taylorseer", "vae_tiling"} <= set(report["levers"])
    assert report["levers"]["batched_cfg"]["max_pixel_diff"] <= 1  # exact up to float rounding
    assert all("random weights" in report["levers"][name]["note"] for name in ("step_cache=first-block", "step_cache=taylorseer"))
    assert report["labels"]["weights"].startswith("random") and report["labels"]["vae"].startswith("toy VAE")
    figures = [report["presets"]["chosen"]["first_preview_seconds"], report["plain_seconds"], report["preview_decode"]["ratio"],
               *(lever["speedup"] for lever in report["levers"].values())]
    assert all(f["rounds"] == 2 and f["min"] <= f["median"] <= f["max"] for f in figures)
