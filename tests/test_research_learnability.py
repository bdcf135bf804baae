"""Fast version of benchmarks/bench_learnability.py: a few training steps must already help."""

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


def test_trained_lora_beats_the_untrained_model_on_held_out_clips(tmp_path):
    bench = load_benchmark()
    results = bench.run_benchmark(steps=40, train_clips=3, test_clips=2, modes=("full",), lr=1e-2, rank=16,
                                  sample_steps=2, workdir=tmp_path)
    trained, untrained = results["trained full"], results["untrained"]
    assert trained["x0_err"] < 0.95 * untrained["x0_err"]
    assert set(results) == {"trained full", "untrained", "identity"}
    assert "trained full" in bench.format_table(results)
