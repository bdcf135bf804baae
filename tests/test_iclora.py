"""IC-LoRA conditioning on the tiny Wan transformer: token layout, timesteps, RoPE, attention modes."""

import pytest
import torch

from c2r.models.iclora import ICLoRAWan, ReferenceKVCache
from c2r.models.registry import build_tiny

LATENT_SHAPE = (1, 16, 3, 8, 8)  # 3 latent frames of 8x8 -> 3 x 4 x 4 = 48 tokens per clip
TOKENS = 48


@pytest.fixture()
def transformer():
    return build_tiny("t2v", seed=3)["transformer"]


def latents(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.randn((batch, *LATENT_SHAPE[1:]), generator=torch.Generator().manual_seed(seed))


def text(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 32, 32, generator=torch.Generator().manual_seed(100 + seed))


def last_block_outputs(model: ICLoRAWan, *args, **kwargs) -> torch.Tensor:
    captured = []
    handle = model.transformer.blocks[-1].register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        model(*args, **kwargs)
    handle.remove()
    return captured[-1]


def test_reference_tokens_get_timestep_zero_and_their_noisy_twins_rope(transformer):
    model = ICLoRAWan(transformer, "full")
    refs = [latents(1), latents(2)]  # colour and depth, each its own reference clip
    inputs = model.prepare(latents(0, batch=2), refs, torch.tensor(640.0))

    assert inputs.num_noisy == TOKENS
    assert inputs.tokens.shape[:2] == (2, 3 * TOKENS)
    assert torch.all(inputs.timestep[:, :TOKENS] == 640.0)
    assert torch.all(inputs.timestep[:, TOKENS:] == 0.0)
    cos, sin = inputs.rope
    assert cos.shape[1] == 3 * TOKENS
    for clip in (1, 2):
        ref = slice(clip * TOKENS, (clip + 1) * TOKENS)
        assert torch.equal(cos[:, ref], cos[:, :TOKENS]) and torch.equal(sin[:, ref], sin[:, :TOKENS])
    # the noisy half uses exactly Wan's own table for the noisy grid
    own_cos, own_sin = transformer.rope(latents(0))
    assert torch.equal(cos[:, :TOKENS], own_cos) and torch.equal(sin[:, :TOKENS], own_sin)
    # and positions differ between tokens (the test would pass vacuously on a constant table)
    assert not torch.equal(cos[:, 0], cos[:, TOKENS - 1])


def test_reference_of_another_shape_is_refused_with_both_shapes(transformer):
    model = ICLoRAWan(transformer)
    with pytest.raises(ValueError, match=r"\(16, 2, 8, 8\).*\(16, 3, 8, 8\)"):
        model.prepare(latents(0), [torch.zeros(1, 16, 2, 8, 8)], torch.tensor(1.0))


def test_noisy_only_pass_matches_diffusers_forward(transformer):
    """With an empty reference cache the module must be plain Wan: checks embed/head/unpatchify."""
    plain = transformer(latents(0, 2), torch.tensor([300.0, 300.0]), text(0, 2), return_dict=False)[0]
    model = ICLoRAWan(transformer, "causal-ref")
    heads, dim = 2, 12
    empty = torch.zeros(1, 0, heads, dim)
    cache = ReferenceKVCache([(empty, empty)] * len(transformer.blocks))
    with torch.no_grad():
        ours = model(latents(0, 2), [], torch.tensor(300.0), text(0, 2), cache=cache)
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-5)


def test_processors_act_as_plain_wan_outside_ic_passes(transformer):
    before = transformer(latents(0), torch.tensor([500.0]), text(0), return_dict=False)[0]
    ICLoRAWan(transformer, "causal-ref")
    after = transformer(latents(0), torch.tensor([500.0]), text(0), return_dict=False)[0]
    torch.testing.assert_close(after, before, atol=1e-6, rtol=1e-6)


def test_full_mode_output_follows_the_reference(transformer):
    model = ICLoRAWan(transformer, "full")
    with torch.no_grad():
        a = model(latents(0), [latents(1)], torch.tensor(500.0), text(0))
        b = model(latents(0), [latents(2)], torch.tensor(500.0), text(0))
    assert a.shape == LATENT_SHAPE
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["full", "causal-ref"])
def test_training_gradient_reaches_the_reference(transformer, mode):
    """The loss on the noisy tokens depends on the reference's content, in the joint pass training runs."""
    model = ICLoRAWan(transformer, mode)
    reference = latents(1).requires_grad_(True)
    velocity = model(latents(0), [reference], torch.tensor(500.0), text(0))
    velocity.square().mean().backward()
    assert reference.grad.abs().max() > 1e-6
    with torch.no_grad():
        other = model(latents(0), [latents(2)], torch.tensor(500.0), text(0))
    assert (velocity.detach() - other).abs().max() > 1e-3


@pytest.mark.parametrize("mode, independent", [("causal-ref", True), ("full", False)])
def test_reference_stream_independence(transformer, mode, independent):
    """causal-ref: reference tokens ignore the noisy tokens, the timestep and the prompt; full: they don't."""
    model = ICLoRAWan(transformer, mode)
    refs = [latents(1)]
    first = last_block_outputs(model, latents(0), refs, torch.tensor(900.0), text(0))[:, TOKENS:]
    second = last_block_outputs(model, latents(5), refs, torch.tensor(100.0), text(7))[:, TOKENS:]
    difference = (first - second).abs().max().item()
    if independent:
        assert difference < 1e-5
    else:
        assert difference > 1e-3


def test_cached_reference_keys_values_equal_the_masked_joint_pass(transformer):
    model = ICLoRAWan(transformer, "causal-ref")
    refs = [latents(1), latents(2)]
    cache = model.encode_references(refs)
    assert len(cache.layers) == len(transformer.blocks)
    assert cache.layers[0][0].shape[:2] == (1, 2 * TOKENS)
    with torch.no_grad():
        for t, seed in ((950.0, 0), (120.0, 4)):  # one cache serves every step and both CFG branches
            noisy, prompt = latents(seed, batch=2), text(seed, batch=2)
            joint = model(noisy, refs, torch.tensor(t), prompt)
            cached = model(noisy, [], torch.tensor(t), prompt, cache=cache)
            torch.testing.assert_close(cached, joint, atol=1e-5, rtol=0)


def test_reference_cache_needs_causal_ref_mode(transformer):
    with pytest.raises(ValueError, match="causal-ref"):
        ICLoRAWan(transformer, "full").encode_references([latents(1)])
    with pytest.raises(ValueError, match="attention_mode='sideways'"):
        ICLoRAWan(transformer, "sideways")


def test_joint_pass_modulates_each_segment_as_wan_does_with_per_token_timesteps(transformer):
    """The segmented modulation computes what diffusers' block computes with a (B, S, 6, D) modulation."""
    model = ICLoRAWan(transformer, "full")
    noisy, refs, t = latents(0, batch=2), [latents(1), latents(2)], torch.tensor(640.0)
    with torch.no_grad():
        out = model(noisy, refs, t, text(0, batch=2))
        inputs = model.prepare(noisy, refs, t)
        times = t.expand(2)
        temb, proj_noisy, txt = model._embed(times, text(0, batch=2))
        _, proj_ref, _ = model._embed(torch.zeros(2), None)
        n, s = inputs.num_noisy, inputs.tokens.shape[1]
        per_token = torch.cat([proj_noisy[:, None].expand(-1, n, -1, -1), proj_ref[:, None].expand(-1, s - n, -1, -1)], 1)
        model._state.phase, model._state.num_noisy = "joint", n
        hidden = inputs.tokens
        for block in transformer.blocks:
            hidden = block(hidden, txt, per_token, inputs.rope)  # diffusers' own per-token path
        expected = model._head(hidden[:, :n], temb, noisy.shape)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_joint_pass_does_not_build_a_per_token_modulation(transformer):
    """[real-weights] 7: a full-mode pass over S joint tokens costs about what plain Wan costs over S tokens,
    not one more (B, S, 6, D) float32 modulation per block (an A14B block at 480p x 81: 8 GB)."""
    from c2r.models.tensor_peak import TensorPeak

    model = ICLoRAWan(transformer, "full")
    noisy, prompt = torch.randn(1, 16, 5, 32, 32), text(0)
    tokens, dim = 2 * 5 * 16 * 16, transformer.config.num_attention_heads * transformer.config.attention_head_dim
    with torch.no_grad():
        with TensorPeak() as joint:
            model(noisy, [noisy.clone()], torch.tensor(500.0), prompt)
        model._state.phase = "idle"  # plain Wan attention over the same number of tokens
        with TensorPeak() as plain:
            transformer(torch.cat([noisy, noisy], dim=-1), torch.tensor([500.0]), prompt, return_dict=False)
    per_token_modulation = tokens * 6 * dim * 4
    assert joint.peak - plain.peak < per_token_modulation, (joint.peak, plain.peak)
