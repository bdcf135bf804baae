"""Real-width tier: every public preset loads from a user's folder or HF cache, plans, and runs.

The released architectures (widths, heads, ffn and text dims, the Wan2.1 and Wan2.2 VAEs) at 2
transformer blocks with random weights (``real_width_models``), loaded by the real loader and
realified through a real daemon: a 16:9 clip, 1:1 frames back, at the smallest grid, two
windows (the second continues a 5-frame prefix). wan2.1-t2v-1.3b comes from ``--model-path``
(a Hub-like folder), the others from a Hugging Face cache layout (``HF_HUB_CACHE``).
The two 14B presets are checked on the meta device (their configs and parameter counts): one
real-width 14B block is 351M parameters, too heavy to run on a 2-core CI machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2r.models.lora import LoraInfo, add_lora, save_lora
from c2r.models.registry import PRESETS, transformer_class
from daemon_process import start_daemon
from real_width_models import shallow, write_hf_cache, write_hub_folder

RUN = ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.1-vace-1.3b"]
HEIGHT, WIDTH, FRAMES = 36, 64, 13  # 16:9; windows of 9 frames with 5 shared: two windows
SESSION = dict(quality="final", steps=2, guidance=1.0, window=9, overlap=5, resolution="native")


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """name -> (Hub-like folder, HF cache root): built once per test session."""
    root = tmp_path_factory.mktemp("real_width")
    cache = root / "hf" / "hub"
    folders = {}
    for name in RUN:
        folder = write_hub_folder(name, root / "hub" / PRESETS[name].repo_id.split("/")[1])
        write_hf_cache(PRESETS[name].repo_id, folder, cache)
        folders[name] = folder
    return folders, cache


@pytest.fixture(scope="module")
def daemon(released, tmp_path_factory, monkeypatch_module):
    folders, cache = released
    monkeypatch_module.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    loras = tmp_path_factory.mktemp("loras")
    causal_lora(loras / "causal")
    d = start_daemon(tmp_path_factory.mktemp("real_width_daemon"), "--model", "wan2.1-t2v-1.3b",
                     "--model-path", str(folders["wan2.1-t2v-1.3b"]), "--lora-dir", str(loras), timeout=600)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def causal_lora(folder) -> None:
    """An IC-LoRA for the real-width 1.3B whose metadata fixes attention to causal-ref."""
    preset = shallow("wan2.1-t2v-1.3b")
    torch.manual_seed(3)
    transformer = transformer_class(preset)(**preset.transformer_config)
    add_lora(transformer, rank=4)
    save_lora(folder, {"transformer": transformer},
              LoraInfo(rank=4, attention_mode="causal-ref", base_model="wan2.1-t2v-1.3b"))


def clip(seed: int = 0):
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 255, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = rng.uniform(1, 10, (FRAMES, HEIGHT, WIDTH)).astype(np.float32)
    return color, depth


def realify(daemon, **options):
    from c2r.client import Result, connect

    color, depth = clip()
    with connect(daemon.address, token=daemon.token, start_daemon=False, timeout=600) as client:
        with client.realify(buffers=["color", "depth"], **SESSION, **options) as session:
            for i in range(FRAMES):
                session.send(i, color[i], depth[i])
            session.end()
            return [e for e in session.events() if isinstance(e, Result) and not e.preview]


@pytest.mark.parametrize("model, lora", [("wan2.1-t2v-1.3b", ""), ("wan2.1-t2v-1.3b", "causal"),
                                         ("wan2.2-ti2v-5b", ""), ("wan2.1-vace-1.3b", "")])
def test_released_architecture_realifies_a_16_9_clip_one_to_one(daemon, model, lora):
    finals = realify(daemon, model=model, lora=lora)
    assert [r.index for r in finals] == list(range(FRAMES))  # two windows, the second after its prefix
    assert all(r.image.shape == (HEIGHT, WIDTH, 3) and r.image.dtype == np.uint8 for r in finals)
    assert np.ptp(np.stack([r.image for r in finals])) > 0


def test_loader_reads_the_hf_cache_and_vace_gets_its_keep_mask(released, monkeypatch):
    """In-process: the real loader finds the cached snapshot; the pipeline receives mask 0 for the prefix."""
    from diffusers import WanVACEPipeline

    from c2r.models.backend import GBuffers, RealifyConfig
    from c2r.models.backends import create_backend
    from c2r.models.registry import local_path

    _, cache = released
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert local_path(PRESETS["wan2.1-vace-1.3b"]).is_dir()
    masks = []
    original = WanVACEPipeline.prepare_masks
    monkeypatch.setattr(WanVACEPipeline, "prepare_masks",
                        lambda self, mask, *a, **k: masks.append(mask.clone()) or original(self, mask, *a, **k))
    backend = create_backend("wan2.1-vace-1.3b")
    backend.load("cpu")
    color, depth = clip()
    out = backend.realify(GBuffers(color, depth=depth), RealifyConfig(steps=1, guidance=1.0, window=9, overlap=5,
                                                                       resolution="native"))
    assert out.shape == (FRAMES, HEIGHT, WIDTH, 3)
    first, second = masks
    assert torch.all(first == 1.0)  # nothing to keep in the first window
    assert torch.all(second[:, :, :5] == 0.0) and torch.all(second[:, :, 5:] == 1.0)


@pytest.mark.parametrize("name", sorted(p for p in PRESETS if not PRESETS[p].is_tiny))
def test_released_configs_have_the_planned_parameter_counts(name):
    """On the meta device (no memory): the full-depth released transformer has the planner's parameter counts."""
    preset = PRESETS[name]
    with torch.device("meta"):
        model = transformer_class(preset)(**preset.transformer_config)
    blocks = list(model.blocks) + list(getattr(model, "vace_blocks", []))
    assert sum(p.numel() for p in model.parameters()) == preset.footprint.expert_params
    assert max(sum(p.numel() for p in b.parameters()) for b in blocks) == preset.footprint.block_params
    assert len(model.blocks) == preset.transformer_config["num_layers"]
