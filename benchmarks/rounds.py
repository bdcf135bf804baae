"""Fair timing for the benchmarks: warm-up, interleaved repeated rounds, medians with their range.

Every configuration is run ``warmup`` times untimed first (allocator, kernels, caches, lazy
imports), then ``rounds`` rounds each run every configuration once, the order rotated each
round, so no configuration always runs cold, first, or after the same neighbour. A figure is
the median of its rounds, shown with its min-max.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(runs: dict[str, Callable[[], dict]], rounds: int, warmup: int = 1) -> dict[str, list[dict]]:
    """name -> one measurement dict per round (what ``runs[name]()`` returned)."""
    if rounds < 1 or warmup < 0:
        raise SystemExit(f"rounds={rounds}, warmup={warmup}: use at least 1 round and 0 or more warm-ups")
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(runs[name]())
    return samples


def spread(values: list[float]) -> dict:
    """{"median", "min", "max", "rounds"} of one figure over the rounds."""
    return dict(median=statistics.median(values), min=min(values), max=max(values), rounds=len(values))


def summarise(samples: list[dict], key: str) -> dict:
    return spread([s[key] for s in samples])


def cell(figure: dict | None, digits: int = 3) -> str:
    """'median (min-max)' for a table."""
    if figure is None:
        return "-"
    return f"{figure['median']:.{digits}f} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f})"


def warm_median_ms(fn: Callable[[], object], repeats: int = 15) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after one warm-up call (for small pieces timed alone)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
