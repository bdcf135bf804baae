"""A one-minute slice of the C2R-style feature adapter's training (`c2r train --set conditioning='feature-adapter'`)
on the testbed, and its file: the released key layout, loaded strictly, refused when its shapes do not fit.
The measured budget runs in benchmarks/bench_testbed.py ("feature adapter" row)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2r.models import tiny_trained
from c2r.models.backend import RealifyConfig
from c2r.models.backends import create_backend
from c2r.models.coarse_to_real.adapter import C2RControl, ControlShapes
from c2r.models.coarse_to_real.backend import C2RBackend
from c2r.models.coarse_to_real.checkpoint import ADAPTER_FILE, ADAPTER_PREFIXES, CheckpointMismatch, load_control, read_safetensors
from c2r.models.coarse_to_real.dino import StandinDino
from c2r.models.coarse_to_real.pipeline import C2RPipeline
from c2r.models.coarse_to_real.trained_adapter import (AdapterInfo, encoder_spec, load_adapter, new_control,
                                                       read_adapter_info, save_adapter)
from c2r.models.research.testbed import PROMPT, render_clip, write_dataset
from c2r.models.research.train import Trainer, load_config

FRAMES = 17


def adapter_config(steps: int, **extra):
    settings = dict(model=tiny_trained.PRESET_NAME, conditioning="feature-adapter", num_frames=FRAMES, resolution="native",
                    max_steps=steps, warmup_steps=5, learning_rate=3e-3, checkpoint_every=0, validation_every=0,
                    gradient_checkpointing=False, timestep_shift=3.0, seed=0)
    return load_config(None, {**settings, **extra})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("testbed") / "data", [0, 1], FRAMES)


def high_noise_loss(trainer: Trainer, sigmas=(0.8, 0.95)) -> float:
    """The flow-matching loss of every cached clip at fixed high sigmas and fixed noise, through the trained
    module: where the render's structure is what the base cannot guess (near sigma 0 the base alone is close)."""
    losses = []
    with torch.no_grad():
        for index in range(len(trainer.dataset)):
            item, prompt = trainer.dataset.load(index)
            x0 = item["target"]
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(index))
            for sigma in sigmas:
                velocity = trainer.experts["transformer"]((1 - sigma) * x0 + sigma * noise, item["features"],
                                                          torch.tensor([sigma * 1000.0]), prompt)
                losses.append(torch.nn.functional.mse_loss(velocity, noise - x0).item())
    return float(np.mean(losses))


def test_the_adapter_trains_on_the_frozen_base_and_saves_the_released_layout(data, tmp_path):
    torch.set_num_threads(1)
    trainer = Trainer(adapter_config(100), data, tmp_path / "run")
    base_state = {k: v.clone() for k, v in trainer.components["transformer"].state_dict().items()}
    trainer.prepare_data()
    before = high_noise_loss(trainer)
    trainer.train()
    after = high_noise_loss(trainer)
    assert after < 0.85 * before, (before, after)  # measured: 0.52 -> 0.37
    # only the adapter and the bridge trained: the base is the committed one, untouched
    assert all(torch.equal(v, base_state[k]) for k, v in trainer.components["transformer"].state_dict().items())

    raw = read_safetensors(tmp_path / "run" / "adapter" / ADAPTER_FILE)
    assert raw and all(k.startswith(ADAPTER_PREFIXES) for k in raw)
    assert "dino_patch_adapter.gate" not in raw
    control = load_control(C2RControl(ControlShapes.for_models(StandinDino().hidden_size, 128)), raw)  # strict keys
    trained = trainer.trained["control"].state_dict()
    assert all(torch.equal(v, trained[k].cpu()) for k, v in control.state_dict().items())
    info = read_adapter_info(tmp_path / "run" / "adapter")
    assert info.base_model == tiny_trained.PRESET_NAME and info.encoder == {"standin": StandinDino(patch_size=8).__dict__}
    assert info.coefficients == (1.0,)  # the released first third of 3 blocks: block 0

    # the realify path: the C2R backend over the tiny-trained base and this adapter, one pass per step
    backend = create_backend(tiny_trained.C2R_PRESET_NAME, model_path=str(tmp_path / "run" / "adapter"))
    backend.load("cpu")
    clip = render_clip(5000, FRAMES)
    config = RealifyConfig(prompt=PROMPT, steps=3, guidance=1.0, guidance_mode="cfg", shift=3.0, window=FRAMES,
                           overlap=5, resolution="native")
    out = backend.realify(clip.gbuffers(), config)
    assert out.shape == clip.coarse.shape and out.dtype == np.uint8
    in_memory = C2RBackend(tiny_trained.C2R_PRESET_NAME)
    in_memory.pipeline = trainer.pipeline  # the model as trained, before saving
    assert np.array_equal(out, in_memory.realify(clip.gbuffers(), config))  # the file and the encoder rebuilt exactly


def test_resume_continues_the_adapter_run_exactly(data, tmp_path):
    torch.set_num_threads(1)
    whole = Trainer(adapter_config(4), data, tmp_path / "whole")
    whole.train()
    first = Trainer(adapter_config(4, checkpoint_every=2), data, tmp_path / "split")
    first.train(stop_after=2)
    assert (tmp_path / "split" / "checkpoints" / "step_0000002" / "adapter_state.pt").is_file()
    resumed = Trainer(adapter_config(4, checkpoint_every=2), data, tmp_path / "split")
    assert resumed.resume("latest") == 2
    resumed.train()
    a, b = whole.trained["control"].state_dict(), resumed.trained["control"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_dinov3_folder_can_be_the_feature_encoder_and_is_rebuilt_from_its_path(data, tmp_path):
    torch.set_num_threads(1)
    StandinDino(hidden_size=32, layers=1, heads=2, seed=3).build().save_pretrained(tmp_path / "dinov3")
    trainer = Trainer(adapter_config(2, feature_encoder=str(tmp_path / "dinov3")), data, tmp_path / "run")
    trainer.train()
    info = read_adapter_info(tmp_path / "run" / "adapter")
    assert info.encoder == {"path": str((tmp_path / "dinov3").resolve())}
    parts = load_adapter(tmp_path / "run" / "adapter", trainer.components["transformer"])
    assert parts["dino"].config.hidden_size == 32
    assert all(torch.equal(v, trainer.pipeline.dino.model.state_dict()[k]) for k, v in parts["dino"].state_dict().items())


def test_a_wrong_shaped_or_unlabelled_adapter_file_is_refused_naming_what_is_wrong(tmp_path):
    transformer = tiny_trained.load(with_lora=False)["transformer"]
    info = AdapterInfo(tiny_trained.PRESET_NAME, encoder_spec("standin", 8), (1.0,))
    save_adapter(tmp_path / "wide", new_control(StandinDino().hidden_size, 256), info)  # for a 256-wide base
    with pytest.raises(CheckpointMismatch, match=r"dino_patch_adapter\.mlp\.2\.weight \(256, 384\) \(expected \(128, 384\)\)"):
        load_adapter(tmp_path / "wide", transformer)

    released_style = tmp_path / "bare"
    released_style.mkdir()
    from safetensors.torch import save_file

    save_file(dict(new_control(96, 128).state_dict()), released_style / ADAPTER_FILE)  # no c2r header
    with pytest.raises(ValueError, match="no c2r metadata"):
        load_adapter(released_style, transformer)
    with pytest.raises(FileNotFoundError, match="c2r train --set conditioning='feature-adapter'"):
        create_backend(tiny_trained.C2R_PRESET_NAME, model_path=str(tmp_path / "nothing")).load("cpu")


def test_an_encoder_whose_patch_is_not_the_token_size_is_refused():
    components = tiny_trained.load(with_lora=False)
    dino = StandinDino(patch_size=16).build()
    with pytest.raises(ValueError, match="16-pixel patch does not match the transformer's 8-pixel tokens"):
        C2RPipeline({**components, "dino": dino, "control": new_control(96, 128), "injection_coefficients": [1.0]})


@pytest.mark.parametrize("overrides, message", [
    (dict(conditioning="dino"), "conditioning='dino': choose one of"),
    (dict(model="tiny-a14b"), "trains on one text-to-video transformer"),
    (dict(reference=["color", "depth"]), "reads the coarse colour only"),
])
def test_feature_adapter_settings_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, {**dict(model="tiny-trained", conditioning="feature-adapter", num_frames=FRAMES), **overrides})


def test_the_committed_adapter_moves_a_held_out_render_towards_its_real_look_through_the_c2r_backend():
    """tiny-trained-c2r as shipped (adapter trained 4000 steps, float16): closer to the "real" target than the
    input, and following the render, not only the average look (another scene's render matches worse)."""
    torch.set_num_threads(1)
    clip = render_clip(9001, FRAMES)  # a seed no training run used
    backend = create_backend(tiny_trained.C2R_PRESET_NAME)
    backend.load("cpu")
    config = RealifyConfig(prompt=PROMPT, steps=6, guidance=1.0, guidance_mode="cfg", shift=3.0, window=FRAMES, overlap=5,
                           resolution="native", seed=0)
    out = backend.realify(clip.gbuffers(), config)

    def error(video):
        return np.abs(video.astype(np.float32) - clip.real.astype(np.float32)).mean()

    base = create_backend(tiny_trained.PRESET_NAME)  # the IC-LoRA preset's backend, its LoRA unloaded: the plain base
    base.load("cpu")
    base.pipeline.experts["transformer"].transformer.disable_adapters()
    plain = base.realify(clip.gbuffers(), config)
    other = backend.realify(render_clip(9002, FRAMES).gbuffers(), config)
    # measured: 0.66x the identity's error, 0.74x the plain base's, 0.78x another scene's render's
    assert error(out) < 0.75 * error(clip.coarse)
    assert error(out) < 0.85 * error(plain)
    assert error(out) < 0.85 * error(other)
