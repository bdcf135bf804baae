"""Fast version of benchmarks/bench_learnability.py: a few training steps must already help,
and the IC-LoRA must learn to read its reference, not only the task's average look."""

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learnability.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_learnability", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_task_is_a_fixed_mapping_of_the_input():
    bench = load_benchmark()
    coarse, real = bench.synthetic_pair(3, 5, 32)
    again_coarse, again_real = bench.synthetic_pair(3, 5, 32)
    assert np.array_equal(coarse, again_coarse) and np.array_equal(real, again_real)
    assert coarse.shape == real.shape == (5, 32, 32, 3)
    assert np.abs(coarse.astype(int) - real.astype(int)).mean() > 10  # the "real" look differs
    assert not np.array_equal(coarse[0], coarse[-1])  # the shapes move
    source, target = bench.task_pair(3, 5, 32, "copy")
    assert np.array_equal(source, coarse) and np.array_equal(target, coarse)


def test_trained_lora_reads_the_reference_on_held_out_clips(tmp_path):
    """Copy task (target = the render): the base model denoises but is blind to the render; the
    LoRA must make the output depend on the reference (ref_use > 0) and cut the error."""
    bench = load_benchmark()
    results = bench.run_benchmark(steps=400, train_clips=8, test_clips=2, frames=5, modes=("full",), lr=3e-3, rank=16,
                                  sample_steps=2, base_steps=600, task="copy", workdir=tmp_path)
    trained, base = results["trained full"], results["base (no LoRA)"]
    assert trained["x0_err"] < 0.8 * base["x0_err"]
    assert trained["ref_use"] > 0.0
    assert trained["ref_use"] > base["ref_use"]
    assert set(results) == {"trained full", "base (no LoRA)", "identity"}
    assert "trained full" in bench.format_table(results)
