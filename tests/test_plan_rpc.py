"""The Plan RPC: the memory planner's answer asked of a real daemon, and the planner's sequence-parallel and time terms."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace

import grpc
import pytest

from c2r.client import Client
from c2r.client.errors import InvalidInput
from c2r.models.backend import RealifyConfig, apply_quality
from c2r.models.levers import Levers
from c2r.models.memory_plan import (GIB, MFU, choose_plan, denoise_flops, describe, duration_text, gpu_tflops,
                                    plan_window, window_seconds)
from c2r.models.registry import get_preset
from c2r.v1 import coarse2real_pb2 as pb

H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_bytes": 80 * GIB, "free_bytes": 79 * GIB}
FINAL = apply_quality(RealifyConfig(), "final")


def test_a_cpu_daemon_answers_plan_with_no_gpu_and_the_window_count(daemon):
    with Client(daemon.address) as client:
        reply = client.plan(640, 360, frames=100, model="tiny", quality="preview", window=17, overlap=0)
    assert reply.model == "tiny" and reply.device == "cpu" and not reply.gpu_name
    assert reply.windows == math.ceil(100 / 17) and reply.seconds_per_window == 0 and not reply.fits
    assert "No NVIDIA GPU" in reply.summary and "CPU" in reply.summary


def test_plan_refuses_a_bad_size_an_unknown_model_and_a_lora_path(daemon):
    stub = daemon.stub()
    config = pb.SessionConfig(protocol_major=pb.PROTOCOL_MAJOR, protocol_minor=pb.PROTOCOL_MINOR, model="tiny")
    for request, said in ((pb.PlanRequest(config=config, width=0, height=360), "frame size 0x360"),
                          (pb.PlanRequest(config=config, width=99999, height=360), "at most 4096x4096"),
                          (pb.PlanRequest(config=pb.SessionConfig(model="no-such"), width=64, height=64), "unknown model"),
                          (pb.PlanRequest(config=pb.SessionConfig(model="tiny", lora="../x"), width=64, height=64),
                           "not a path")):
        with pytest.raises(grpc.RpcError) as err:
            stub.Plan(request, metadata=daemon.metadata, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and said in err.value.details(), err.value.details()
    with Client(daemon.address) as client, pytest.raises(InvalidInput, match="height"):
        client.plan(64, -1)


def test_plan_reply_on_an_h100_matches_c2r_plan_and_leaves_torch_unimported():
    """The daemon's planning on a (named) H100 is the planner's answer, and the front end stays torch-free."""
    code = """
import sys
from c2r.daemon.planning import plan_reply
from c2r.daemon.session_config import ResolvedSession
from c2r.models.backend import RealifyConfig, apply_quality
from c2r.v1 import coarse2real_pb2 as pb
config = apply_quality(RealifyConfig(), "final")
resolved = ResolvedSession("wan2.2-t2v-a14b", "", config, ["color"], pb.SessionConfig(), [])
gpu = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_bytes": 80 * 2**30, "free_bytes": 0}
reply = plan_reply(pb.PlanRequest(width=1280, height=720, frames=250), resolved, "cuda:0", [gpu], 1)
print(reply.fits, reply.offload, reply.windows, round(reply.peak_gib, 2), round(reply.seconds_per_window))
print(reply.summary)
print("torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    numbers, summary, torch_loaded = done.stdout.strip().splitlines()
    plan = choose_plan("wan2.2-t2v-a14b", 80 * GIB, FINAL.window, 720, 1280, FINAL,
                       Levers(compile_blocks=True, preview_decoder="latent"))
    seconds = window_seconds(plan, H100["name"])
    fits, offload, windows, peak, per_window = numbers.split()
    assert (fits, offload, int(windows), float(peak)) == (str(plan.fits), plan.offload, 4, round(plan.peak_bytes / GIB, 2))
    assert int(per_window) == round(seconds)
    assert summary.startswith("Fits on your NVIDIA H100 80GB HBM3 (80 GiB) with model offload; about ")
    assert "4 windows" in summary and "estimate" in summary
    assert torch_loaded == "False"


def test_two_gpus_per_window_split_activations_and_cache_and_keep_the_weights_whole():
    config = replace(FINAL, attention_mode="causal-ref")
    one = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, config, Levers(), offload="none")
    two = plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, config, Levers(), offload="none", ranks=2)
    assert two.components["weights"] == one.components["weights"]
    assert two.components["text encoder"] == one.components["text encoder"]
    assert two.components["vae"] == one.components["vae"]
    assert two.components["activations"] == -(-one.components["activations"] // 2)
    assert two.components["reference cache"] == -(-one.components["reference cache"] // 2) > 0
    assert two.flops == one.flops and two.ranks == 2
    with pytest.raises(ValueError, match="engine groups hold the whole model"):
        plan_window("wan2.1-t2v-1.3b", 81, 720, 1280, config, Levers(), offload="model", ranks=2)


def test_an_engine_group_never_plans_offload_and_says_what_to_do_when_the_model_is_too_big():
    """A14B on 24 GiB cards: one card fits with block offload; a group of 4 cannot (each holds both experts)."""
    single = choose_plan("wan2.2-t2v-a14b", 24 * GIB, 81, 480, 832, FINAL, Levers())
    group = choose_plan("wan2.2-t2v-a14b", 24 * GIB, 81, 480, 832, FINAL, Levers(), ranks=4)
    assert single.fits and single.offload != "none"
    assert not group.fits and group.offload == "none"
    summary, _ = describe(group, FINAL, "NVIDIA GeForce RTX 4090")
    assert summary.startswith("Does not fit on 4 GPUs per window") and "--gpus-per-window 1" in summary


def test_the_time_estimate_matches_wan22s_published_a100_figure():
    """Wan2.2's README: T2V-A14B at 1280x720, 81 frames, 40 steps on one A100 takes 2735.7 s (all phases)."""
    config = replace(FINAL, steps=40, guidance=4.0, reference=(), strength=1.0, resolution="720p", window=81)
    plan = plan_window("wan2.2-t2v-a14b", 81, 720, 1280, config, Levers(), offload="none")
    assert window_seconds(plan, "NVIDIA A100-SXM4-80GB") == pytest.approx(2735.7, rel=0.15)


def test_the_time_estimate_follows_steps_strength_guidance_and_gpus():
    preset = get_preset("wan2.1-t2v-1.3b")
    base = denoise_flops(preset, replace(FINAL, guidance=5.0, strength=1.0), 10_000, 0, "full")
    assert denoise_flops(preset, replace(FINAL, guidance=1.0, strength=1.0), 10_000, 0, "full") == base / 2
    assert denoise_flops(preset, replace(FINAL, guidance=5.0, strength=0.5), 10_000, 0, "full") == pytest.approx(
        base * round(FINAL.steps * 0.5) / FINAL.steps)
    # causal-ref runs the reference tokens once, full attention every step: full costs more
    assert denoise_flops(preset, FINAL, 10_000, 10_000, "full") > denoise_flops(preset, FINAL, 10_000, 10_000, "causal-ref")
    plan = plan_window(preset, 81, 480, 832, FINAL, Levers(), offload="none")
    group = plan_window(preset, 81, 480, 832, FINAL, Levers(), offload="none", ranks=2)
    assert window_seconds(plan, H100["name"]) == pytest.approx(plan.flops / (989e12 * MFU))
    assert window_seconds(plan, H100["name"]) / window_seconds(group, H100["name"]) == pytest.approx(1.85)
    assert gpu_tflops("NVIDIA H100 PCIe") == 756.0 and gpu_tflops("NVIDIA GeForce RTX 4090") == 165.2
    assert window_seconds(plan, "Some Future GPU") is None
    assert [duration_text(s) for s in (0.2, 42, 300, 3900)] == ["1 s", "42 s", "5 min", "1 h 5 min"]
