"""Anchor-parallel long sequences: the plan tiles the clip, and each anchor pins both chunks beside it.

Real tiny backends (IC-LoRA, VACE, C2R, and the trained `tiny-trained` preset); the pins are
checked on the latents each chunk is decoded from, against the anchor frames encoded
independently here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2r.models.anchors import ANCHOR_CLIP, BLEND, plan_anchors, realify_anchored
from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.pinning import pin_ends
from c2r.models.preprocess import frames_to_model, grid_for
from c2r.models.vace import VACEBackend

SIZE = 32
CONFIG = RealifyConfig(steps=2, guidance=1.0, window=17, overlap=5, resolution="native", chaining="anchors")


def make_clip(frames: int) -> GBuffers:
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (frames, SIZE, SIZE, 3), dtype=np.uint8)
    depth = (2 + rng.random((frames, SIZE, SIZE))).astype(np.float32)
    return GBuffers(color=color, depth=depth)


@pytest.mark.parametrize("num_frames, window, every", [(1, 17, 0), (16, 17, 0), (17, 17, 0), (41, 17, 16),
                                                       (250, 81, 0), (250, 33, 12), (97, 17, 8), (33, 17, 16)])
def test_plan_tiles_the_clip_one_frame_out_per_frame_in(num_frames, window, every):
    plan = plan_anchors(num_frames, window, every)
    covered = np.zeros(num_frames, int)
    for piece in plan.pieces:
        covered[piece.emit_start : piece.emit_end] += 1
        assert piece.start <= piece.emit_start < piece.emit_end <= piece.end <= num_frames
        assert piece.end - piece.start <= window
    assert (covered == 1).all()
    for chunk in plan.chunks:  # a chunk with a suffix ends on its anchor with whole latents
        if chunk.suffix_anchor is not None:
            assert chunk.end == chunk.suffix_anchor + 1 and (chunk.end - chunk.start - 1) % 4 == 0
    assert [p.index for p in plan.pieces] == list(range(len(plan.pieces)))
    assert all(p.kind == "anchor" for p in plan.pieces[: len(plan.anchors)])  # stage 1 before stage 2


def test_bad_spacing_is_refused_with_the_range():
    with pytest.raises(ValueError, match="multiple of 4 from 8 to 16"):
        plan_anchors(100, 17, 10)
    with pytest.raises(ValueError, match="anchor_every=20 with window=17"):
        RealifyConfig(window=17, overlap=5, anchor_every=20).validate()
    with pytest.raises(ValueError, match="chaining='parallel'"):
        RealifyConfig(chaining="parallel").validate()
    with pytest.raises(ValueError, match="use window >= 9"):
        RealifyConfig(window=5, overlap=1, chaining="anchors").validate()
    assert RealifyConfig().chaining == "sequential"  # streams chain windows; anchors are asked for


def test_pin_ends_replaces_both_ends_at_sigma():
    latents, noise = torch.randn(2, 4, 6, 3, 3), torch.randn(1, 4, 6, 3, 3)
    head, tail = torch.randn(1, 4, 1, 3, 3), torch.randn(1, 4, 2, 3, 3)
    out = pin_ends(latents, noise, head, tail, 0.25)
    assert torch.allclose(out[:, :, :1], (0.75 * head + 0.25 * noise[:, :, :1]).expand(2, -1, -1, -1, -1))
    assert torch.allclose(out[:, :, -2:], (0.75 * tail + 0.25 * noise[:, :, -2:]).expand(2, -1, -1, -1, -1))
    assert torch.equal(out[:, :, 1:4], latents[:, :, 1:4])
    with pytest.raises(ValueError, match="overlap"):
        pin_ends(latents, noise, torch.randn(1, 4, 5, 3, 3), tail, 0.0)


def _backend(name: str):
    if name == "tiny-vace":
        backend = VACEBackend("tiny-vace", control="depth")
    else:
        backend = create_backend(name)
    backend.load("cpu")
    return backend


def _codec(backend):
    return backend._latents if isinstance(backend, VACEBackend) else backend.pipeline.latents


@pytest.mark.parametrize("name", ["tiny", "tiny-vace", "tiny-c2r", "tiny-trained"])
def test_each_anchor_pins_both_neighbouring_chunks(name, monkeypatch):
    backend = _backend(name)
    codec = _codec(backend)
    decoded: list[torch.Tensor] = []
    decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda latents: decoded.append(latents.clone()) or decode(latents))
    requests: list[WindowRequest] = []
    results: list[np.ndarray] = []

    def run(request: WindowRequest) -> np.ndarray:
        requests.append(request)
        results.append(backend.realify_window(request))
        return results[-1]

    clip = make_clip(41)
    config = RealifyConfig(**{**CONFIG.__dict__, "anchor_every": 16})
    out = realify_anchored(run, clip, config)
    assert out.shape == (41, SIZE, SIZE, 3) and out.dtype == np.uint8
    plan = plan_anchors(41, 17, 16)
    assert plan.anchors == (16, 32) and len(requests) == len(plan.pieces) == 5
    final = dict(zip((p.index for p in plan.pieces), decoded))  # each window decodes its final latents once
    grid = grid_for(SIZE, SIZE, "native")

    def encode(frames: np.ndarray) -> torch.Tensor:
        return codec.encode(frames_to_model(frames, grid, "cpu", torch.float32))

    for j, anchor in enumerate(plan.anchors):
        before, after = [c for c in plan.chunks if anchor in (c.suffix_anchor, c.prefix_anchor)]
        suffix, prefix = requests[before.index].suffix, requests[after.index].prefix
        assert len(suffix) == ANCHOR_CLIP and len(prefix) == 1
        np.testing.assert_array_equal(suffix[-1], prefix[0])  # the same realified anchor frame on both sides
        np.testing.assert_array_equal(prefix[0], out[anchor])  # and it is the output frame at the anchor
        torch.testing.assert_close(final[before.index][:, :, -1:], encode(suffix)[:, :, 1:], rtol=0, atol=1e-5)
        torch.testing.assert_close(final[after.index][:, :, :1], encode(prefix), rtol=0, atol=1e-5)
        # the chunk's last frames cross-fade from its own decode into the anchor clip's, up to the anchor frame
        own = results[before.index][anchor - BLEND - 1 - before.start : anchor - before.start]
        clip_frames = suffix[-BLEND - 1 : -1]
        np.testing.assert_array_equal(out[anchor - BLEND - 1], own[0])  # before the fade: the chunk's own frame
        to_own = [np.abs(out[anchor - BLEND + k].astype(int) - own[1 + k]).mean() for k in range(BLEND)]
        to_clip = [np.abs(out[anchor - BLEND + k].astype(int) - clip_frames[k]).mean() for k in range(BLEND)]
        assert to_own == sorted(to_own) and to_clip == sorted(to_clip, reverse=True), (to_own, to_clip)
        assert to_own[0] < to_clip[0] and to_own[-1] > to_clip[-1]
    # the pins did something: a chunk run without them ends elsewhere
    chunk = plan.chunks[1]
    free = backend.realify_window(WindowRequest(clip.slice(chunk.start, chunk.end), config, None, chunk.window))
    assert not np.array_equal(free[0], out[chunk.start])
    backend.unload()


def test_suffix_on_a_padded_window_is_refused():
    backend = _backend("tiny")
    clip = make_clip(15)
    suffix = np.zeros((5, SIZE, SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="4k\\+1 frames"):
        backend.realify_window(WindowRequest(clip, CONFIG, None, None, suffix))
