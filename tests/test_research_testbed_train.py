"""A one-minute slice of the testbed's VAE training (the full budget runs in benchmarks/bench_testbed.py)."""

import numpy as np
import torch

from c2r.models.research.testbed import render_clip
from c2r.models.research.testbed_train import new_vae, psnr, refine_decoder, round_trip, train_vae

SIZE = (24, 32)
TINY_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[True, True],
                scale_factor_spatial=4)


def test_train_vae_learns_a_round_trip_of_the_testbed_clips():
    torch.set_num_threads(1)
    clip = render_clip(0, 9, SIZE)
    before = psnr(clip.real, round_trip(new_vae(TINY_VAE), clip.real))
    vae, _ = train_vae([0, 1], 9, SIZE, 80, crops=((9, 16), (5, 24)), batch=2, config=TINY_VAE)
    after = psnr(clip.real, round_trip(vae, clip.real))
    assert after > before + 3, (before, after)


def test_round_trip_keeps_any_clip_length():
    """The causal VAE maps 4k+1 frames to 4k+1: other lengths (a 250-frame sequence) come back whole."""
    vae = new_vae(TINY_VAE)
    for count in (1, 6, 9, 10):
        clip = render_clip(0, count, SIZE)
        out = round_trip(vae, clip.real)
        assert out.shape == clip.real.shape and out.dtype == np.uint8, count


def test_refine_decoder_keeps_the_latents_and_trains_only_the_decoder():
    """The preset's transformer was trained on these latents: refining the decoder must not move them."""
    torch.set_num_threads(1)
    vae = new_vae(TINY_VAE)
    clip = render_clip(0, 9, SIZE)
    x = torch.from_numpy(clip.real).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mode()
    encoder = {k: v.clone() for k, v in vae.state_dict().items() if not k.startswith(("decoder.", "post_quant_conv."))}
    decoder = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith("decoder.")}
    before = psnr(clip.real, round_trip(vae, clip.real))
    refine_decoder(vae, [0], 30, SIZE, crops=((9, 16),), batch=2, warmup=1)
    state = vae.state_dict()
    assert all(torch.equal(state[k], v) for k, v in encoder.items())
    assert any(not torch.equal(state[k], v) for k, v in decoder.items())
    with torch.no_grad():
        assert torch.equal(vae.encode(x).latent_dist.mode(), latents)
    assert psnr(clip.real, round_trip(vae, clip.real)) > before
    assert not any(p.requires_grad for p in vae.parameters())
