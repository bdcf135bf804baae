"""The IC-LoRA's LoRA: peft targets, diffusers-format save/load, metadata, both A14B experts."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.iclora import ICLoRAWan
from c2r.models.lora import EXPERT_WEIGHT_NAMES, LoraInfo, add_lora, load_lora, read_lora_info, save_lora
from c2r.models.registry import build_tiny

EXPERTS = ("transformer", "transformer_2")
NOISY = torch.randn(1, 16, 2, 8, 8, generator=torch.Generator().manual_seed(0))
REFERENCE = torch.randn(1, 16, 2, 8, 8, generator=torch.Generator().manual_seed(1))
TEXT = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2))




def expert_outputs(components: dict) -> list[torch.Tensor]:
    with torch.no_grad():
        return [ICLoRAWan(components[e])(NOISY, [REFERENCE], torch.tensor(400.0), TEXT) for e in EXPERTS]


def trained_a14b(rank: int = 4) -> dict:
    """tiny-a14b with a non-trivial LoRA on each expert (peft's random init stands in for training)."""
    components = build_tiny("a14b")
    for e in EXPERTS:
        add_lora(components[e], rank=rank, init_weights=False)
    return components


def test_lora_targets_attention_and_ffn_linears_with_the_given_rank():
    transformer = build_tiny("t2v")["transformer"]
    add_lora(transformer, rank=6)
    wrapped = {name for name, module in transformer.named_modules() if hasattr(module, "lora_A")}
    block = "blocks.1."
    for attn in ("attn1", "attn2"):
        for proj in ("to_q", "to_k", "to_v", "to_out.0"):
            assert f"{block}{attn}.{proj}" in wrapped
    assert {f"{block}ffn.net.0.proj", f"{block}ffn.net.2"} <= wrapped
    assert transformer.blocks[0].attn1.to_q.lora_A["c2r_iclora"].weight.shape[0] == 6
    assert "patch_embedding" not in wrapped and "proj_out" not in wrapped


def test_standard_init_is_a_no_op_and_a_trained_lora_changes_the_output():
    base = expert_outputs(build_tiny("a14b"))
    fresh = build_tiny("a14b")
    for e in EXPERTS:
        add_lora(fresh[e], rank=4)
    for a, b in zip(expert_outputs(fresh), base):
        torch.testing.assert_close(a, b)
    for a, b in zip(expert_outputs(trained_a14b()), base):
        assert (a - b).abs().max() > 1e-3


def test_round_trip_into_both_experts_with_metadata(tmp_path):
    trained = trained_a14b()
    expected = expert_outputs(trained)
    info = LoraInfo(rank=4, attention_mode="causal-ref", reference=("color", "depth"), base_model="tiny-a14b",
                    reference_downscales=(1, 2))
    save_lora(tmp_path, {e: trained[e] for e in EXPERTS}, info)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPERT_WEIGHT_NAMES.values())
    assert read_lora_info(tmp_path) == info
    loaded = build_tiny("a14b")
    assert load_lora(tmp_path, loaded) == info
    for got, want in zip(expert_outputs(loaded), expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_diffusers_wan_pipeline_loads_the_same_folder(tmp_path):
    trained = trained_a14b()
    expected = expert_outputs(trained)
    save_lora(tmp_path, {e: trained[e] for e in EXPERTS}, LoraInfo(rank=4))
    components = build_tiny("a14b")
    pipe = WanPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), **components)
    pipe.load_lora_weights(tmp_path)
    pipe.load_lora_weights(tmp_path, weight_name=EXPERT_WEIGHT_NAMES["transformer_2"], load_into_transformer_2=True)
    for got, want in zip(expert_outputs(components), expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_single_file_lora_serves_both_experts(tmp_path):
    t2v = build_tiny("t2v")
    add_lora(t2v["transformer"], rank=4, init_weights=False)
    save_lora(tmp_path, {"transformer": t2v["transformer"]}, LoraInfo(rank=4))
    a14b = build_tiny("a14b")
    base = expert_outputs(a14b)
    load_lora(tmp_path, a14b)
    for got, before in zip(expert_outputs(a14b), base):
        assert (got - before).abs().max() > 1e-3
    assert hasattr(a14b["transformer_2"].blocks[0].attn1.to_q, "lora_A")


def test_backend_takes_attention_mode_and_references_from_the_lora(tmp_path):
    t2v = build_tiny("t2v")
    add_lora(t2v["transformer"], rank=4, init_weights=False)
    save_lora(tmp_path, {"transformer": t2v["transformer"]}, LoraInfo(rank=4, attention_mode="causal-ref"))
    backend = create_backend("tiny", lora=str(tmp_path))
    backend.load("cpu")
    rng = np.random.default_rng(0)
    clip = GBuffers(rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8))
    config = RealifyConfig(steps=1, guidance=1.0, resolution="native", attention_mode="full")
    out = backend.realify_window(WindowRequest(clip, config))
    assert out.shape == (5, 32, 32, 3)
    assert backend.pipeline.experts["transformer"].attention_mode == "causal-ref"


@pytest.mark.parametrize("trained, expect_half_size_used", [((1,), False), ((1, 2), True)])
def test_backend_uses_only_reference_sizes_the_lora_was_trained_with(tmp_path, trained, expect_half_size_used):
    t2v = build_tiny("t2v")
    add_lora(t2v["transformer"], rank=4, init_weights=False)
    save_lora(tmp_path, {"transformer": t2v["transformer"]}, LoraInfo(rank=4, reference_downscales=trained))
    backend = create_backend("tiny", lora=str(tmp_path))
    backend.load("cpu")
    clip = GBuffers(np.random.default_rng(1).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8))
    config = RealifyConfig(steps=2, guidance=1.0, resolution="native")
    full = backend.realify_window(WindowRequest(clip, config))
    half = backend.realify_window(WindowRequest(clip, replace(config, reference_downscale=2)))  # what the preview preset asks for
    assert np.array_equal(full, half) != expect_half_size_used


def test_lora_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="pytorch_lora_weights.safetensors"):
        read_lora_info(tmp_path)
    t2v = build_tiny("t2v")
    add_lora(t2v["transformer"], rank=2)
    WanPipeline.save_lora_weights(tmp_path, transformer_lora_layers={"blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 24)})
    with pytest.raises(ValueError, match="no c2r metadata.*save_lora"):
        read_lora_info(tmp_path)
    with pytest.raises(ValueError, match="rank=0"):
        add_lora(build_tiny("t2v")["transformer"], rank=0)
