"""The VACE zero-shot backend on the tiny-vace preset: 1:1 frames, seeds, prefixes, controls."""

import numpy as np
import pytest
import torch

from c2r.models.backend import Cancelled, GBuffers, RealifyConfig, WindowRequest
from c2r.models.preprocess import frames_to_model, grid_for, model_to_frames
from c2r.models.vace import VACEBackend

HEIGHT, WIDTH = 24, 40  # not multiples of 16: the backend pads and crops
CONFIG = RealifyConfig(steps=2, guidance=1.0, window=17, overlap=5, resolution="native")


def make_clip(frames: int, seed: int = 0, depth: bool = True) -> GBuffers:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    distance = np.stack([3 + np.sin((x + 2 * t) / 5.0) + 0.1 * y for t in range(frames)]).astype(np.float32)
    color = rng.integers(0, 256, (frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    return GBuffers(color=color, depth=distance if depth else None)


@pytest.fixture(scope="module")
def backend():
    vace = VACEBackend("tiny-vace", control="depth")
    vace.load("cpu")
    yield vace
    vace.unload()


@pytest.mark.parametrize("frames", [1, 17, 30])
def test_frames_come_back_one_to_one_at_the_input_size(backend, frames):
    out = backend.realify(make_clip(frames), CONFIG)
    assert out.shape == (frames, HEIGHT, WIDTH, 3) and out.dtype == np.uint8
    assert out.std() > 1.0  # real decoded frames, not a constant fill


def test_same_seed_gives_the_same_frames_and_another_seed_does_not(backend):
    clip = make_clip(17)
    first = backend.realify(clip, CONFIG)
    np.testing.assert_array_equal(backend.realify(clip, CONFIG), first)
    other = backend.realify(clip, RealifyConfig(**{**CONFIG.__dict__, "seed": 1}))
    assert np.abs(other.astype(int) - first).mean() > 1.0


def test_prefix_frames_are_kept_and_continued(backend):
    clip = make_clip(17)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    prefix = np.stack([np.stack([127 + 100 * np.sin(x / 6 + k) * np.cos(y / 5)] * 3, -1) for k in range(5)])
    prefix = prefix.astype(np.uint8)
    grid = grid_for(HEIGHT, WIDTH, CONFIG.resolution)
    vae = backend.pipeline.vae
    with torch.no_grad():  # the prefix as well as this VAE can reproduce it (random tiny weights)
        encoded = vae.encode(frames_to_model(prefix, grid)).latent_dist.mode()
        reproduced = model_to_frames(vae.decode(encoded, return_dict=False)[0].clamp(-1, 1), grid).astype(int)

    with_prefix = backend.realify_window(WindowRequest(clip, CONFIG, prefix=prefix))
    without = backend.realify_window(WindowRequest(clip, CONFIG))
    kept = np.abs(with_prefix[:5] - reproduced).mean()
    unrelated = np.abs(without[:5] - reproduced).mean()
    assert kept <= 1.0 and unrelated > 10 * max(kept, 0.5)
    assert np.abs(with_prefix[5:].astype(int) - without[5:]).mean() > 1.0  # the prefix steers what follows


def test_edge_control_needs_no_depth_and_depth_control_says_so(backend):
    clip = make_clip(5, depth=False)
    edges = VACEBackend("tiny-vace", control="edges")
    edges.load("cpu")
    by_edges = edges.realify(clip, CONFIG)
    assert by_edges.shape == (5, HEIGHT, WIDTH, 3)
    auto = VACEBackend("tiny-vace", control="auto")
    auto.load("cpu")
    np.testing.assert_array_equal(auto.realify(clip, CONFIG), by_edges)  # no depth pass: auto follows the edges
    with_depth = make_clip(5)
    np.testing.assert_array_equal(auto.realify(with_depth, CONFIG), backend.realify(with_depth, CONFIG))
    with pytest.raises(ValueError, match="depth control needs a depth pass.*control='edges'"):
        backend.realify(clip, CONFIG)


def test_progress_is_reported_and_cancel_stops_the_window(backend):
    events = []
    backend.realify(make_clip(5), RealifyConfig(**{**CONFIG.__dict__, "preview_every": 1}), on_step=events.append)
    kinds = [e.kind for e in events]
    assert kinds == ["window_started", "step", "preview", "step", "window_done"]
    assert events[2].preview.shape == (5, HEIGHT, WIDTH, 3) and events[2].preview.dtype == np.uint8
    steps = []

    def stop_after_first_step(event):  # the one step-callback convention: raising Cancelled stops the window
        steps.append(event)
        if event.kind == "step":
            raise Cancelled("stopped by the test after step 1")

    with pytest.raises(Cancelled, match="after step 1"):
        backend.realify(make_clip(5), CONFIG, on_step=stop_after_first_step)
    assert [e.kind for e in steps] == ["window_started", "step"]


def test_bad_models_and_settings_are_refused_with_advice():
    with pytest.raises(ValueError, match="not a VACE model"):
        VACEBackend("tiny")
    with pytest.raises(ValueError, match="control='canny'"):
        VACEBackend("tiny-vace", control="canny")
    with pytest.raises(RuntimeError, match="call load"):
        VACEBackend("tiny-vace").realify(make_clip(1), CONFIG)


def test_memory_estimate_grows_with_the_window(backend):
    config = RealifyConfig(window=81, resolution="480p")
    small = backend.memory_estimate(17, 480, 832, config)
    large = backend.memory_estimate(81, 480, 832, config)
    weights = sum(p.numel() * p.element_size() for p in backend.pipeline.transformer.parameters())
    assert weights < small < large
    unloaded = VACEBackend("wan2.1-vace-14b").memory_estimate(81, 480, 832, config)
    assert unloaded > 28e9  # 14B parameters in bf16, before any activation


def test_the_pipeline_receives_mask_zero_for_kept_frames_and_one_for_new(backend, monkeypatch):
    """[real-weights] 3: the keep mask reaches WanVACEPipeline as 0 (it was mapped like a video to 0.5)."""
    from diffusers import WanVACEPipeline

    seen = []
    original = WanVACEPipeline.prepare_masks
    monkeypatch.setattr(WanVACEPipeline, "prepare_masks", lambda self, mask, *a, **k: seen.append(mask.clone()) or original(self, mask, *a, **k))
    clip = make_clip(17)
    prefix = np.full((5, HEIGHT, WIDTH, 3), 128, np.uint8)
    backend.realify_window(WindowRequest(clip, CONFIG, prefix))
    mask = seen[-1]  # (1, C, T, H, W) after the pipeline's own preprocessing
    assert torch.all(mask[:, :, :5] == 0.0) and torch.all(mask[:, :, 5:] == 1.0)


def test_vace_load_refuses_an_unknown_offload_like_every_backend():
    backend = VACEBackend("tiny-vace")
    with pytest.raises(ValueError, match=r"offload='disk': choose one of \('none', 'model', 'group'\)"):
        backend.load("cpu", "float32", "disk")
