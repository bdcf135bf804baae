"""Peak bytes of live tensors created while a block of code runs, on any device.

On a GPU the caching allocator keeps exact books (``torch.cuda.max_memory_allocated``); on
the CPU there is no allocator to ask and RSS mixes in the Python heap, the libraries and
freed-but-cached pages. ``TensorPeak`` keeps the books itself: every tensor an operator
returns is counted by its storage until the last tensor viewing that storage is gone. Tensors
that existed before (the weights) are not counted, nor are views of them. This is what the
planner's activation figures are checked against (``benchmarks/bench_planner.py``).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorPeak(TorchDispatchMode):
    """``with TensorPeak() as probe: ...`` then ``probe.peak`` (bytes above the start)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, tensors viewing it]
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[key]
            self.current -= entry[0]

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or tensor.device.type == "meta":
            return
        if key in self.live:
            self.live[key][1] += 1
        elif key in inputs:
            return  # a view of (or in-place result on) a tensor that predates the probe
        else:
            self.live[key] = [nbytes, 1]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        weakref.finalize(tensor, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat_in, _ = tree_flatten((args, kwargs))
        inputs = {a.untyped_storage().data_ptr() for a in flat_in if isinstance(a, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, inputs)
        return out
