"""`c2r plan`: a table, then one JSON line; exit 1 with what to lower when nothing fits; no torch import."""

import json
import subprocess
import sys

import pytest

PROBE = ("import sys; from c2r.cli.main import main; rc = main(sys.argv[1:]); "
         "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr); sys.exit(rc)")


def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, "plan", *args], capture_output=True, text=True, timeout=60)


def test_fits_prints_the_components_and_a_json_last_line():
    done = plan("--model", "wan2.1-t2v-1.3b", "--gpu-memory", "80GB", "--gpu-name", "NVIDIA H100 80GB HBM3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"fits", "offload", "planned_peak_gib", "levers", "gpus_per_window", "seconds_per_window",
                           "windows"}
    assert result["fits"] is True and result["offload"] == "none" and result["levers"]["batched_cfg"] is True
    for row in ("weights", "text encoder", "activations", "reference cache", "vae", "planned peak"):
        assert any(line.startswith(row) for line in lines), row
    assert "no torch" in done.stderr


def test_nothing_fits_exits_1_with_the_reason_and_the_lever():
    done = plan("--model", "wan2.2-t2v-a14b", "--gpu-memory", "16GB", "--resolution", "720p")
    assert done.returncode == 1
    assert json.loads(done.stdout.strip().splitlines()[-1])["fits"] is False
    assert "does not fit" in done.stderr and "lower the resolution" in done.stderr


def test_a_causal_ref_lora_is_planned_with_its_reference_cache(tmp_path):
    """--lora NAME reads the LoRA's own attention mode from its header (no torch): causal-ref keeps a 62 GB cache."""
    import torch

    from c2r.models.lora import LoraInfo, add_lora, save_lora
    from c2r.models.registry import build_tiny

    transformer = build_tiny("t2v")["transformer"]
    add_lora(transformer, rank=2)
    save_lora(tmp_path / "causal", {"transformer": transformer}, LoraInfo(rank=2, attention_mode="causal-ref"))
    done = plan("--model", "wan2.2-t2v-a14b", "--gpu-memory", "24GB", "--lora", "causal", "--lora-dir", str(tmp_path))
    assert done.returncode == 1 and "attention_mode 'full'" in done.stderr
    assert any(line.startswith("reference cache") and float(line.split()[-1]) > 50 for line in done.stdout.splitlines())
    assert "no torch" in done.stderr
    del torch


def test_a_480p_preview_needs_less_offload_than_the_720p_final_on_the_same_card():
    preview, final = (json.loads(plan("--model", "wan2.1-t2v-1.3b", "--gpu-memory", "20", "--quality", q).stdout.splitlines()[-1])
                      for q in ("preview", "final"))
    assert preview["fits"] and final["fits"]
    assert (preview["offload"], final["offload"]) == ("none", "model")


@pytest.mark.parametrize("args, message", [(("--gpu-memory", "lots"), "24GB"), (("--frames", "80"), "4k+1"),
                                            (("--model", "wan9"), "unknown model"), (("--lora", "nope"), "no such LoRA")])
def test_bad_input_says_what_to_give(args, message):
    base = {"--model": "wan2.1-t2v-1.3b", "--gpu-memory": "24GB"}
    base.update(dict(zip(args[::2], args[1::2])))
    done = plan(*[x for kv in base.items() for x in kv])
    assert done.returncode == 2 and message in done.stderr
