"""One window over 2 processes (gloo, CPU): the IC transformer sequence-parallel equals the single-process run.

IC: both attention modes (full; causal-ref with its reference cache sharded) and a whole
pipeline window with a prefix and two reference conditions, CFG batched. VACE: a whole window
(depth control, prefix kept) through diffusers' context-parallel hooks with our VACE plan. C2R:
a whole window (APG, prefix pinned) through Wan's own plan, its control tokens sharded alike.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from c2r.models.parallel.sequence import SequenceParallel

RANK = Path(__file__).with_name("sequence_parallel_rank.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    result, port = tmp_path / "diffs.json", str(free_port())
    procs = [subprocess.Popen([sys.executable, str(RANK), str(r), "2", port, str(result)]) for r in range(2)]
    codes = [p.wait(timeout=240) for p in procs]
    assert codes == [0, 0]
    diffs = json.loads(result.read_text())
    assert diffs.pop("magnitude") > 0.1  # real outputs, not zeros
    # frames: the latents above within 1e-5 may still round a pixel to the next uint8 level
    assert all(diffs.pop(f"frames {name}") <= 1 for name in ("full", "causal-ref", "vace", "c2r"))
    assert set(diffs) == {"full", "causal-ref", "window full", "window causal-ref", "vace window", "c2r window"}
    assert all(d <= 1e-5 for d in diffs.values()), diffs


def test_uneven_segments_and_heads_are_refused_with_advice():
    sp = SequenceParallel(rank=0, world=2)
    with pytest.raises(ValueError, match="segment of 5 tokens"):
        sp.shard(torch.zeros(1, 12, 3), 12, 5)
    with pytest.raises(ValueError, match="3 attention heads"):
        sp.check_heads(3)
    x = torch.arange(12.0).reshape(1, 12, 1)  # 4 noisy + 8 reference tokens
    assert sp.shard(x, 12, 4).flatten().tolist() == [0, 1, 4, 5, 6, 7]
    assert SequenceParallel(rank=1, world=2).shard(x, 12, 4).flatten().tolist() == [2, 3, 8, 9, 10, 11]
