"""An engine group's follower with an injected fault, run in place of ``python -m c2r.models.parallel.group``.

Used by tests/test_scale_group_faults.py. ``C2R_TEST_GROUP_FAULTS`` is a JSON list with one entry per
follower process started (its generation: the group is rebuilt after a failure): "raise", "kill"
(SIGKILL to itself), "oom" (torch's OutOfMemoryError, as CUDA raises it) or null (no fault). A fault
fires at the first denoising step of the follower's first window, before that step's collective, so
rank 0 is waiting in it. ``C2R_TEST_GROUP_MARKS`` is a folder where each follower leaves a file, which
counts the generations. Everything else is the real follower (``group.main``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

from c2r.models.parallel import group


def main() -> int:
    faults = json.loads(os.environ["C2R_TEST_GROUP_FAULTS"])
    marks = Path(os.environ["C2R_TEST_GROUP_MARKS"])
    generation = len(list(marks.iterdir()))
    (marks / f"{generation}-{os.getpid()}").touch()
    fault = faults[generation] if generation < len(faults) else None
    agreed = group._agreed_step

    def faulty(on_step, leader):
        step = agreed(on_step, leader)

        def run(event):
            if fault and event.step >= 1:
                if fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if fault == "raise":
                    raise RuntimeError(f"injected failure on rank 1 at step {event.step}")
                if fault == "oom":
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected on rank 1)")
            step(event)
        return run

    group._agreed_step = faulty
    return group.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
