"""One rank of the sequence-parallel equality test (tests/test_sequence_parallel.py); run as a script.

Each rank builds the same tiny IC and VACE backends, runs the same passes once on its own (the
single-process reference) and once sequence-parallel over the gloo group, and rank 0
writes the largest differences as JSON.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.backends import create_backend
from c2r.models.parallel.sequence import (SequenceParallel, enable_c2r_sequence_parallel, enable_context_parallel,
                                          vace_plan)
from c2r.models.vace import VACEBackend


def passes(backend) -> dict[str, torch.Tensor | np.ndarray]:
    model = backend.pipeline.experts["transformer"]
    g = torch.Generator().manual_seed(3)
    noisy = torch.randn(2, 16, 5, 4, 4, generator=g)  # batch 2: both CFG branches at once
    refs = [torch.randn(1, 16, 5, 4, 4, generator=g), torch.randn(1, 16, 5, 4, 4, generator=g)]  # colour + depth
    text = torch.randn(2, 7, model.transformer.config.text_dim, generator=g)
    t = torch.tensor([700.0])
    out = {}
    with torch.no_grad():
        model.attention_mode = "full"
        out["full"] = model(noisy, refs, t, text)
        model.attention_mode = "causal-ref"
        cache = model.encode_references(refs, target=noisy)
        out["causal-ref"] = model(noisy, [], t, text, cache=cache)
    rng = np.random.default_rng(0)
    clip = GBuffers(rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8),
                    depth=(1 + rng.random((17, 32, 32))).astype(np.float32))
    prefix = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    codec, decoded = backend.pipeline.latents, []
    decode = codec.decode
    codec.decode = lambda latents: decoded.append(latents.clone()) or decode(latents)  # the window's final latents
    for mode in ("full", "causal-ref"):
        config = RealifyConfig(steps=2, guidance=3.0, window=17, overlap=5, resolution="native",
                               reference=("color", "depth"), attention_mode=mode)
        out[f"frames {mode}"] = backend.realify_window(WindowRequest(clip, config, prefix))
        out[f"window {mode}"] = decoded.pop()
    codec.decode = decode
    return out


def vace_window(backend) -> dict[str, torch.Tensor | np.ndarray]:
    """A whole VACE window (depth control, prefix kept), its final latents and frames."""
    rng = np.random.default_rng(1)
    clip = GBuffers(rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8),
                    depth=(1 + rng.random((17, 32, 32))).astype(np.float32))
    prefix = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    codec, decoded = backend._latents, []
    decode = codec.decode
    codec.decode = lambda latents: decoded.append(latents.clone()) or decode(latents)
    config = RealifyConfig(steps=2, guidance=3.0, window=17, overlap=5, resolution="native")
    frames = backend.realify_window(WindowRequest(clip, config, prefix))
    codec.decode = decode
    return {"vace window": decoded[-1], "frames vace": frames}


def c2r_window(backend) -> dict[str, torch.Tensor | np.ndarray]:
    """A whole C2R window (APG guidance, prefix pinned), its final latents and frames."""
    rng = np.random.default_rng(2)
    clip = GBuffers(rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8))
    prefix = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    codec, decoded = backend.pipeline.latents, []
    decode = codec.decode
    codec.decode = lambda latents: decoded.append(latents.clone()) or decode(latents)
    config = RealifyConfig(steps=2, guidance=3.0, window=17, overlap=5, resolution="native")
    frames = backend.realify_window(WindowRequest(clip, config, prefix))
    codec.decode = decode
    return {"c2r window": decoded[-1], "frames c2r": frames}


def main() -> int:
    rank, world, port, result = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    torch.manual_seed(0)
    backend = create_backend("tiny")
    backend.load("cpu")
    vace = VACEBackend("tiny-vace", control="depth")
    vace.load("cpu")
    c2r = create_backend("tiny-c2r")
    c2r.load("cpu")
    single = passes(backend) | vace_window(vace) | c2r_window(c2r)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    sp = SequenceParallel.from_process_group("cpu")
    backend.pipeline.experts["transformer"].enable_sequence_parallel(sp)
    enable_context_parallel(vace.pipeline.transformer, sp, vace_plan())  # diffusers' own hooks, our VACE plan
    enable_c2r_sequence_parallel(c2r.pipeline, sp)
    parallel = passes(backend) | vace_window(vace) | c2r_window(c2r)
    dist.destroy_process_group()
    if rank == 0:
        diffs = {k: float(np.abs(np.asarray(single[k], np.float64) - np.asarray(parallel[k], np.float64)).max())
                 for k in single}
        diffs["magnitude"] = float(single["full"].abs().max())
        with open(result, "w") as f:
            json.dump(diffs, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
