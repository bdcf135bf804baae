"""benchmarks/gpu_suite.py at toy size on the CPU (its GPU run needs CUDA): every section reports."""

import json
import subprocess
import sys
from pathlib import Path


def test_gpu_suite_toy_runs_every_section_and_prints_one_json_line():
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"
    done = subprocess.run([sys.executable, str(bench), "--toy"], capture_output=True, text=True, timeout=300,
                          cwd=bench.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["toy"] is True and "not GPU figures" in report["device"]
    assert {r["mode"] for r in report["steps"]} == {"full", "causal-ref"}
    assert all(r["step_s"] > 0 and r["tflops"] > 0 for r in report["steps"])
    lora = report["a14b_windows"][1]
    assert lora["steps"] == 4 and lora["first_preview_s"] is not None and lora["first_preview_s"] < lora["window_s"]
    parts = {(r["model"], r["resolution"]) for r in report["planner"]}
    assert {("tiny", "480p"), ("tiny", "720p"), ("tiny VAE", "720p")} <= parts
    assert all(r["measured_gib"] > 0 and r["planned_gib"] > 0 for r in report["planner"])
