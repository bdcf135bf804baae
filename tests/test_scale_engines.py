"""Every local engine busy: two sessions on a daemon with 2 CPU engines run at the same time.

Overlap is read from the engines' own clocks (each engine logs when each window ran), not
from wall-clock speed ratios.
"""

from __future__ import annotations

import re
import threading

import pytest

from c2r.daemon.engine_pool import engine_gpus
from daemon_process import start_daemon
from daemon_wire import collect, finals, frame, session_config, stream

RAN = re.compile(r"engine\[(\d+)\] INFO window (\d+) of (s-\w+): .* \(ran ([\d.]+)-([\d.]+)\)")


def test_engine_gpus_groups_and_counts(monkeypatch):
    assert engine_gpus("cpu", engines=2) == [None, None]
    assert engine_gpus("cpu") == [None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert engine_gpus("auto") == ["0", "1", "2", "3"]
    assert engine_gpus("cuda", gpus_per_window=2) == ["0,1", "2,3"]
    assert engine_gpus("cuda", engines=1, gpus_per_window=2) == ["0,1"]
    with pytest.raises(ValueError, match="make only 2 engine"):
        engine_gpus("cuda", engines=3, gpus_per_window=2)
    with pytest.raises(ValueError, match="only 4 GPU"):
        engine_gpus("cuda", gpus_per_window=8)


def test_two_sessions_run_concurrently_on_two_engines(tmp_path):
    d = start_daemon(tmp_path, "--engines", "2")
    try:
        assert d.engine_pid(0) != d.engine_pid(1)
        cfg = session_config(steps=6, window=17, overlap=5, quality="final", resolution="native")
        results: dict[int, tuple] = {}

        def run(i: int) -> None:
            results[i] = collect(d.stub().Realify(stream(cfg, [frame(k) for k in range(29)]), timeout=300))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        for messages, error in results.values():
            assert error is None, error
            assert sorted(r.index for r in finals(messages)) == list(range(29))
        ran: dict[str, list[tuple[int, float, float]]] = {}
        for pid, _, session, start, end in RAN.findall(d.log()):
            ran.setdefault(session, []).append((int(pid), float(start), float(end)))
    finally:
        d.stop()
    assert len(ran) == 2, ran
    (a, b) = ran.values()
    assert len(a) == len(b) == 2  # 29 frames in 17-frame windows overlapping by 5
    # each session's windows ran while the other's did: neither waited for the other to finish
    assert min(e for _, _, e in a) > min(s for _, s, _ in b) and min(e for _, _, e in b) > min(s for _, s, _ in a)
    # and on two different engines at those instants
    first_a, first_b = min(a, key=lambda w: w[1]), min(b, key=lambda w: w[1])
    assert first_a[0] != first_b[0]
