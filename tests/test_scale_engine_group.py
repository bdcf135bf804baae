"""An engine group on the CPU: `c2r serve --gpus-per-window 2` runs each window over 2 gloo processes
and returns the frames one process returns."""

from __future__ import annotations

import numpy as np

from daemon_process import start_daemon
from daemon_wire import collect, finals, frame, image, session_config, stream


def realify(d, cfg, count: int) -> list[np.ndarray]:
    messages, error = collect(d.stub().Realify(stream(cfg, [frame(k) for k in range(count)]), timeout=300))
    assert error is None, error
    return [image(r) for r in sorted(finals(messages), key=lambda r: r.index)]


def test_a_two_rank_engine_group_returns_the_single_engine_frames(tmp_path, daemon):
    cfg = session_config(steps=3, quality="final", window=17, overlap=5, resolution="native")
    single = realify(daemon, cfg, 21)  # two windows: the second continues the first's prefix
    group = start_daemon(tmp_path, "--gpus-per-window", "2")
    try:
        grouped = realify(group, cfg, 21)
        log = group.log()
    finally:
        group.stop()
    assert "engine group of 2 ranks (gloo) ready" in log
    assert len(grouped) == len(single) == 21
    worst = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(single, grouped))
    assert worst <= 1  # float sums in another order may round a pixel to the next level
