"""GPU speed levers on tiny configs: each on gives 1:1 frames, exact ones match levers off, defaults per GPU."""

import numpy as np
import pytest
import torch
from diffusers.models.attention_dispatch import attention_backend
from safetensors.torch import save_file

from c2r.models.backend import RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.levers import GIB, Levers, apply_to_transformer, choose_levers
from c2r.models.lora import add_lora
from c2r.models.registry import build_tiny
from c2r.models.step_lora import STEP_ADAPTER_NAME, load_step_lora, read_step_lora
from test_pipeline import moving_square

CFG = RealifyConfig(steps=3, guidance=4.0, resolution="native")




def loaded(model: str = "tiny", **levers):
    backend = create_backend(model, levers=Levers(**levers))
    backend.load("cpu")
    return backend


@pytest.fixture(scope="module")
def plain():
    return loaded()


@pytest.fixture(scope="module")
def clip():
    return moving_square(9)


def count_block_calls(backend, run) -> int:
    """Blocks that really computed (a cache hook skips a block's inside, not its call)."""
    calls = []
    blocks = backend.pipeline.experts["transformer"].transformer.blocks
    handles = [b.ffn.register_forward_pre_hook(lambda *a: calls.append(1)) for b in blocks]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return len(calls)


def test_batched_cfg_equals_the_two_sequential_branches(plain, clip):
    batched = loaded(batched_cfg=True)
    window = plain.pipeline._prepare_window(clip, CFG, None, seed=0)
    cond = plain.pipeline.prompts.encode("a street", "cpu", torch.float32)
    uncond = plain.pipeline.prompts.encode("cartoon", "cpu", torch.float32)
    latents = window.noise
    with torch.no_grad():
        sequential = plain.pipeline._velocity(latents, window, 0.7, cond, uncond, 4.0, {})
        one_forward = batched.pipeline._velocity(latents, window, 0.7, cond, uncond, 4.0, {})
    torch.testing.assert_close(one_forward, sequential, atol=1e-5, rtol=1e-5)
    assert count_block_calls(batched, lambda: batched.realify_window(WindowRequest(clip, CFG))) == 3 * 2  # one forward per step
    assert count_block_calls(plain, lambda: plain.realify_window(WindowRequest(clip, CFG))) == 3 * 2 * 2


def test_attention_backend_reaches_the_ic_processors(plain, clip):
    with attention_backend():  # set_attention_backend also sets diffusers' global default: restore it after
        chosen = loaded(attention_backend="_native_math")
        processors = [b.attn1.processor for b in chosen.pipeline.experts["transformer"].transformer.blocks]
        assert all(p._attention_backend == "_native_math" for p in processors)
        np.testing.assert_allclose(chosen.realify_window(WindowRequest(clip, CFG)), plain.realify_window(WindowRequest(clip, CFG)), atol=1)


def test_vae_tiling_and_causal_ref_levers_give_one_frame_per_input(plain, clip):
    tiled = loaded(vae_tiling=True)
    assert tiled.pipeline.vae.use_tiling
    np.testing.assert_array_equal(tiled.realify_window(WindowRequest(clip, CFG)), plain.realify_window(WindowRequest(clip, CFG)))  # 32 px: one tile
    causal = loaded(causal_ref=True)
    lengths = []
    block = causal.pipeline.experts["transformer"].transformer.blocks[0]
    handle = block.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    out = causal.realify_window(WindowRequest(clip, CFG))
    handle.remove()
    assert out.shape == (9, 32, 32, 3)
    assert lengths == [lengths[0]] + [lengths[0]] * 6  # the reference pass once, then noisy-only forwards


@pytest.mark.parametrize("cache", ["first-block", "taylorseer"])
def test_step_caches_skip_work_and_reset_per_window(plain, clip, cache):
    cached = loaded(step_cache=cache, step_cache_threshold=1e9)  # first-block: always reuse after step 1
    config = RealifyConfig(steps=8, guidance=1.0, resolution="native")
    full = count_block_calls(plain, lambda: plain.realify_window(WindowRequest(clip, config)))
    outs = []
    skipped = count_block_calls(cached, lambda: outs.append(cached.realify_window(WindowRequest(clip, config))))
    assert outs[0].shape == (9, 32, 32, 3)
    assert skipped < full
    np.testing.assert_array_equal(cached.realify_window(WindowRequest(clip, config)), outs[0])  # state does not leak across windows


def test_compile_wraps_every_block_without_running():
    transformer = build_tiny("t2v")["transformer"]
    apply_to_transformer(transformer, Levers(compile_blocks=True))
    assert all(block._compiled_call_impl is not None for block in transformer.blocks)


def test_lever_errors_name_the_value_and_choices():
    with pytest.raises(ValueError, match="step_cache='magcache'.*calibration"):
        Levers(step_cache="magcache").validate()
    with pytest.raises(ValueError, match="preview_decoder='taesd'"):
        create_backend("tiny", levers=Levers(preview_decoder="taesd"))


def test_choose_levers_fits_the_card():
    small = choose_levers("NVIDIA GeForce RTX 4090", 24 * GIB, "wan2.2-t2v-a14b")
    assert small.offload == "group" and small.vae_tiling and not small.batched_cfg
    big = choose_levers("NVIDIA H100 80GB HBM3", 80 * GIB, "wan2.1-t2v-1.3b")
    assert big.offload == "none" and big.batched_cfg and big.compile_blocks and not big.vae_tiling
    assert big.attention_backend in ("_flash_3", "flash", "_native_cudnn")
    assert choose_levers("NVIDIA H200", 141 * GIB, "wan2.2-t2v-a14b").offload == "none"
    assert choose_levers("NVIDIA H100 80GB HBM3", 80 * GIB, "wan2.2-t2v-a14b").offload != "none"  # 2 x 14B
    cpu = choose_levers(None, 0, "tiny")
    assert cpu.offload == "none" and cpu.attention_backend is None and not cpu.compile_blocks
    for levers in (small, big, cpu):  # output-changing levers stay the user's choice
        assert levers.step_cache == "none" and not levers.causal_ref and levers.step_lora is None


# --- step-distilled LoRAs -----------------------------------------------------------------
def diffusers_format_lora(path, seed: int = 5) -> None:
    """A LoRA in diffusers' key layout with non-zero up-projections (so it changes the output)."""
    from diffusers import WanPipeline
    from peft.utils import get_peft_model_state_dict

    transformer = build_tiny("t2v", seed=seed)["transformer"]
    add_lora(transformer, rank=4, init_weights="gaussian")
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed))
    state = get_peft_model_state_dict(transformer, adapter_name="c2r_iclora")
    WanPipeline.save_lora_weights(path.parent, transformer_lora_layers=state, weight_name=path.name)


def original_wan_format_lora(path, layers: int = 2, rank: int = 4) -> None:
    """The key names of Wan's own code (diffusion_model.*, lora_down/lora_up/alpha), as lightx2v ships."""
    gen = torch.Generator().manual_seed(9)
    shapes = {"self_attn": (24, 24), "cross_attn": (24, 24)}
    state = {}
    for i in range(layers):
        for module, (out_dim, in_dim) in shapes.items():
            for proj in "qkvo":
                prefix = f"diffusion_model.blocks.{i}.{module}.{proj}"
                state[f"{prefix}.lora_down.weight"] = torch.randn(rank, in_dim, generator=gen)
                state[f"{prefix}.lora_up.weight"] = torch.randn(out_dim, rank, generator=gen)
                state[f"{prefix}.alpha"] = torch.tensor(float(rank))
        for proj, (out_dim, in_dim) in (("ffn.0", (48, 24)), ("ffn.2", (24, 48))):
            prefix = f"diffusion_model.blocks.{i}.{proj}"
            state[f"{prefix}.lora_down.weight"] = torch.randn(rank, in_dim, generator=gen)
            state[f"{prefix}.lora_up.weight"] = torch.randn(out_dim, rank, generator=gen)
            state[f"{prefix}.alpha"] = torch.tensor(float(rank))
    save_file(state, path)


def test_distilled_lora_loads_into_both_experts_and_changes_the_output(tmp_path, clip):
    path = tmp_path / "wan_4step_lora.safetensors"
    diffusers_format_lora(path)
    config = RealifyConfig(steps=2, guidance=1.0, resolution="native")
    base = loaded("tiny-a14b").realify_window(WindowRequest(clip, config))
    distilled = loaded("tiny-a14b", step_lora=str(path))
    for expert in distilled.pipeline.experts.values():
        assert STEP_ADAPTER_NAME in expert.transformer.peft_config
    out = distilled.realify_window(WindowRequest(clip, config))
    assert out.shape == base.shape and np.abs(out.astype(int) - base).mean() > 1
    weak = loaded("tiny-a14b", step_lora=str(path), step_lora_weight=0.0).realify_window(WindowRequest(clip, config))
    np.testing.assert_array_equal(weak, base)  # weight 0: the adapter is there but contributes nothing


def test_a14b_low_noise_expert_takes_its_own_file(tmp_path):
    high, low = tmp_path / "high_noise.safetensors", tmp_path / "low_noise.safetensors"
    diffusers_format_lora(high, seed=5)
    diffusers_format_lora(low, seed=6)
    components = build_tiny("a14b")
    assert load_step_lora(components, high, low_noise_path=low) == ["transformer", "transformer_2"]
    key = "transformer.blocks.0.attn1.to_q.lora_B.weight"
    for expert, file in (("transformer", high), ("transformer_2", low)):
        layer = components[expert].blocks[0].attn1.to_q
        torch.testing.assert_close(layer.lora_B[STEP_ADAPTER_NAME].weight, read_step_lora(file)[key])


def test_original_wan_key_names_are_converted_and_sit_beside_the_ic_lora(tmp_path):
    path = tmp_path / "lightx2v_style.safetensors"
    original_wan_format_lora(path)
    state = read_step_lora(path)
    assert "transformer.blocks.0.attn1.to_q.lora_A.weight" in state
    assert "transformer.blocks.1.ffn.net.2.lora_B.weight" in state
    components = build_tiny("t2v")
    add_lora(components["transformer"], rank=4)  # the IC-LoRA, already there
    assert load_step_lora(components, path, weight=0.5) == ["transformer"]
    layer = components["transformer"].blocks[0].attn1.to_q
    assert set(layer.active_adapters) == {"c2r_iclora", STEP_ADAPTER_NAME}
    assert layer.scaling[STEP_ADAPTER_NAME] == pytest.approx(0.5)


def test_missing_distilled_lora_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="step-distilled LoRA .*nope.safetensors not found"):
        read_step_lora(tmp_path / "nope.safetensors")
