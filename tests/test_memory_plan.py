"""The one memory planner: released parameter counts, plans that match the levers they choose, per window shape."""

import logging
from dataclasses import replace

import numpy as np
import pytest

from c2r.models.backend import RealifyConfig, apply_quality
from c2r.models.grid import grid_for
from c2r.models.levers import Levers
from c2r.models.memory_plan import GIB, advice, choose_levers, choose_plan, plan_window
from c2r.models.registry import PRESETS

PUBLIC = ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.1-vace-1.3b", "wan2.1-vace-14b"]
FINAL = apply_quality(RealifyConfig(), "final")
PREVIEW = apply_quality(RealifyConfig(), "preview")


def test_planner_uses_the_released_parameter_counts():
    """[real-weights] 9: 1.419B, 14.288B per A14B expert, 2.154B, 17.338B; 8 VACE layers in 14B; Wan2.2 VAE 2.8 GB."""
    counts = {name: PRESETS[name].footprint.expert_params / 1e9 for name in PUBLIC}
    assert counts == pytest.approx({"wan2.1-t2v-1.3b": 1.419, "wan2.2-ti2v-5b": 5.000, "wan2.2-t2v-a14b": 14.288,
                                    "wan2.1-vace-1.3b": 2.154, "wan2.1-vace-14b": 17.338}, abs=1e-3)
    assert len(PRESETS["wan2.1-vace-14b"].transformer_config["vace_layers"]) == 8
    plan = plan_window("wan2.2-ti2v-5b", 81, 480, 832, FINAL, Levers(offload="model"))
    assert plan.components["weights"] >= (5.0e9 * 2 + 2.8e9)  # one 5B expert in bf16 + the float32 Wan2.2 VAE
    text = plan_window("wan2.1-t2v-1.3b", 81, 480, 832, FINAL, Levers()).components["text encoder"]
    assert text / 1e9 == pytest.approx(11.36, abs=0.01)  # UMT5-XXL's encoder in bf16


def test_causal_ref_cache_is_batch_one_and_sized_per_layer():
    """1.3B at 720p x 81: 2 x 30 layers x 75600 reference tokens x 1536 x 2 bytes = 13.9 GB, whatever the CFG batch."""
    config = RealifyConfig(**{**FINAL.__dict__, "attention_mode": "causal-ref"})
    batched = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, config, Levers(batched_cfg=True))
    single = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, config, Levers(batched_cfg=False))
    assert batched.components["reference cache"] == single.components["reference cache"]
    assert batched.components["reference cache"] / 1e9 == pytest.approx(13.9, abs=0.05)
    a14b = plan_window("wan2.2-t2v-a14b", 81, 720, 1280, config, Levers(offload="model"))
    assert a14b.components["reference cache"] / 1e9 == pytest.approx(61.9, abs=0.1)  # per expert
    assert any("causal-ref cache" in note for note in a14b.notes)


@pytest.mark.parametrize("model", PUBLIC)
def test_vace_and_every_preset_get_levers_on_a_gpu(model):
    """[real-weights] 1: the chooser plans from the preset; it never builds an IC backend (which refuses VACE)."""
    for gpu, gib in (("NVIDIA H100 80GB HBM3", 80), ("NVIDIA GeForce RTX 4090", 24)):
        levers = choose_levers(gpu, gib * GIB, model)
        assert levers.offload in ("none", "model", "group") and levers.compile_blocks


@pytest.mark.parametrize("model", PUBLIC)
@pytest.mark.parametrize("gib", [24, 32, 40, 48, 80])
def test_the_chosen_levers_are_the_planned_ones(model, gib):
    """[real-weights] 5: batched CFG is chosen inside the plan, so re-planning the chosen levers gives the same peak."""
    plan = choose_plan(model, gib * GIB, 81, 720, 1280, FINAL, Levers())
    again = plan_window(model, 81, 720, 1280, FINAL, plan.levers, total_bytes=gib * GIB)
    assert again.peak_bytes == plan.peak_bytes and again.fits == plan.fits
    if plan.fits:
        assert plan.peak_bytes <= 0.9 * gib * GIB


def test_batched_cfg_doubles_the_activations_it_plans():
    single = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, FINAL, Levers(batched_cfg=False))
    batched = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, FINAL, Levers(batched_cfg=True))
    assert batched.components["activations"] == pytest.approx(2 * single.components["activations"], rel=0.01)
    on_40 = choose_plan("wan2.1-t2v-1.3b", 40 * GIB, 81, 720, 1280, FINAL, Levers())
    assert on_40.fits and on_40.peak_bytes <= 0.9 * 40 * GIB


def test_offload_is_planned_per_window_shape():
    """[real-weights] 8: on a 20 GB card a 480p window and a 720p window plan different offloads."""
    card = 20 * GIB
    small = choose_plan("wan2.1-t2v-1.3b", card, 81, 480, 832, RealifyConfig(**{**FINAL.__dict__, "resolution": "480p"}),
                        Levers())
    large = choose_plan("wan2.1-t2v-1.3b", card, 81, 720, 1280, FINAL, Levers())
    assert small.fits and large.fits and small.offload == "none" and large.offload != "none"
    causal = RealifyConfig(**{**FINAL.__dict__, "attention_mode": "causal-ref"})
    nowhere = choose_plan("wan2.2-t2v-a14b", 24 * GIB, 81, 720, 1280, causal, Levers())
    assert not nowhere.fits and nowhere.offload == "group"  # the lowest-memory plan, which still does not fit
    assert "attention_mode 'full'" in advice(nowhere, causal)  # the 62 GB reference cache is what to lower
    tight = choose_plan("wan2.2-t2v-a14b", 16 * GIB, 81, 720, 1280, FINAL, Levers())
    assert not tight.fits and "lower the resolution" in advice(tight, FINAL)


def test_engine_plans_each_window_and_reloads_with_its_offload(monkeypatch, caplog):
    """The engine re-plans per window shape (logged), reloading only when the offload changes."""
    from test_daemon_engine_oom import OutOfMemoryBackendDouble, run_one_window  # noqa: F401  (the same double)

    from c2r.models import memory_plan

    monkeypatch.setattr(memory_plan, "device_memory", lambda device: ("NVIDIA RTX 4000 Ada", 20 * GIB))
    with caplog.at_level(logging.INFO, logger="c2r.engine"):
        messages, offloads = run_one_window(monkeypatch, failures=0, model="wan2.1-t2v-1.3b",
                                            configs=[RealifyConfig(steps=1, resolution="480p"),
                                                     RealifyConfig(steps=1, resolution="720p")], frames=81)
    from c2r.daemon.engine_messages import WindowResult

    assert [type(m) for m in messages] == [WindowResult, WindowResult]
    assert offloads == ["model", "none", "model"]  # load (planned for 720p), 480p window, 720p window
    assert sum("plan: wan2.1-t2v-1.3b" in r.message for r in caplog.records) == 2


@pytest.mark.parametrize("resolution", ["480p", "720p", "native"])
def test_ti2v_5b_grid_is_whole_tokens_of_its_16x_vae(resolution):
    """[real-weights] 2: Wan2.2's VAE compresses 16x and the patch is 2, so 16:9 sides round to multiples of 32."""
    preset = PRESETS["wan2.2-ti2v-5b"]
    assert preset.grid_multiple == 32
    grid = grid_for(1080, 1920, resolution, preset.grid_multiple)
    assert grid.model_height % 32 == 0 and grid.model_width % 32 == 0
    plan = plan_window(preset, 81, 1080, 1920, RealifyConfig(resolution=resolution), Levers())
    assert plan.model_size == grid.model_size and plan.tokens == 21 * (grid.model_height // 32) * (grid.model_width // 32)


def test_a_control_kind_is_planned_without_references_with_its_held_tokens():
    """How another kind plugs in (C2R): batch 1, no reference tokens, a per-token buffer held through the denoise."""
    base = PRESETS["wan2.2-t2v-a14b"]
    control = replace(base, name="control-14b", kind="c2r", experts=("transformer",), boundary_ratio=None,
                      footprint=replace(base.footprint, extra_params=(("dino", 86_000_000),), held_per_token=5120))
    plan = plan_window(control, 81, 480, 832, FINAL, Levers(batched_cfg=True))
    ic = plan_window(base, 81, 480, 832, FINAL, Levers(batched_cfg=False))
    assert plan.components["activations"] == pytest.approx(ic.components["activations"] / 2 + plan.tokens * 5120 * 2, rel=0.01)
    vae = ic.components["weights"] - 2 * base.footprint.expert_params * 2
    assert plan.components["weights"] == base.footprint.expert_params * 2 + 86_000_000 * 2 + vae
