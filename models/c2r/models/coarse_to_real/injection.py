"""Control injection into a stock diffusers ``WanTransformer3DModel``, by hooks (no fork).

With P the patchified latent tokens and c the adapter's control tokens (same length, same
(t, h, w) order):

* after the patch embedding, h = bridge(P + c);
* before block i, for i = 0 .. 12, h = h + a_i * c with a_i = 0.3 + 0.7 * (1 - i / 12)
  (block 0 gets c again at 1.0, block 12 at 0.3);
* with no control tokens set (the unconditional pass) every hook is a no-op: plain Wan.

Control tokens are set per pass with ``with injection.control(tokens): transformer(...)``;
they are computed once per window and shared by every step and guidance branch.

Sequence parallelism: the hooks find the control tokens for the hidden states they see
through ``ControlTokens.for_length``. Whole sequences (one GPU, or a context-parallel
wrapper that splits inside the block's forward) use them as they are; a rank holding a
contiguous shard of the token sequence calls ``set_sequence_shard(start, end)`` and every
hook then adds the matching slice. Nothing else in the control path knows about ranks.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

INJECTED_BLOCKS = 13  # released: repeat_dino_in_blocks 13
COEFFICIENT_MIN = 0.3  # released: dino_block_decay_min 0.3
BLOCK_FRACTION = 0.333  # released: dino_repeat_blocks_frac 0.333 (13 of Wan-14B's 40 blocks)


def injection_coefficients(blocks: int = INJECTED_BLOCKS, minimum: float = COEFFICIENT_MIN, strength: float = 1.0) -> list[float]:
    """a_i = strength * (minimum + (1 - minimum) * (1 - i / (blocks - 1))), i = 0 .. blocks - 1."""
    if blocks < 1:
        return []
    if blocks == 1:
        return [strength]
    return [strength * (minimum + (1 - minimum) * (1 - i / (blocks - 1))) for i in range(blocks)]


def injected_blocks(num_layers: int) -> int:
    """How many first blocks get the control in a transformer of ``num_layers`` blocks: the released
    third (40 -> 13), at most 13, at least one (the testbed's 3-block base: block 0). How the released
    code combines its two settings is unconfirmed; for Wan's 40 blocks both give 13."""
    return max(1, min(INJECTED_BLOCKS, round(BLOCK_FRACTION * num_layers)))


class ControlTokens:
    """The control tokens of the current pass, and which part of the sequence this rank holds."""

    def __init__(self):
        self.tokens: torch.Tensor | None = None  # (B, S, D)
        self.shard: tuple[int, int] | None = None

    def set_sequence_shard(self, start: int, end: int) -> None:
        self.shard = (int(start), int(end))

    def for_length(self, length: int, like: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens
        if tokens.shape[1] != length:
            if self.shard is None or self.shard[1] - self.shard[0] != length:
                raise ValueError(
                    f"the transformer sees {length} tokens but the control has {tokens.shape[1]} "
                    f"(sequence shard {self.shard}): the coarse video and the latents must cover the same frames "
                    "and size, and a sequence-parallel rank must call set_sequence_shard(start, end) first"
                )
            tokens = tokens[:, self.shard[0] : self.shard[1]]
        return tokens.to(device=like.device, dtype=like.dtype)


class BridgeHook:
    """Forward hook on ``patch_embedding``: its (B, D, T, H, W) output becomes bridge(P + c)."""

    def __init__(self, bridge: nn.Module, control: ControlTokens):
        self.bridge = bridge
        self.control = control

    def __call__(self, module, inputs, output: torch.Tensor):
        if self.control.tokens is None:
            return None
        tokens = output.flatten(2).transpose(1, 2)  # (B, S, D), the order the transformer flattens to
        fused = self.bridge(tokens + self.control.for_length(tokens.shape[1], tokens))
        return fused.transpose(1, 2).reshape(output.shape)


class BlockAdditionHook:
    """Forward pre-hook on one block: hidden_states += coefficient * c."""

    def __init__(self, coefficient: float, control: ControlTokens):
        self.coefficient = coefficient
        self.control = control

    def __call__(self, module, args):
        if self.control.tokens is None:
            return None
        hidden, *rest = args
        hidden = hidden + self.coefficient * self.control.for_length(hidden.shape[1], hidden)
        return (hidden, *rest)


class ControlInjection:
    """Installs the bridge and block hooks on ``transformer``; ``control(tokens)`` arms them for one pass."""

    def __init__(self, transformer: nn.Module, bridge: nn.Module, coefficients: list[float] | None = None):
        coefficients = injection_coefficients() if coefficients is None else list(coefficients)
        if len(coefficients) > len(transformer.blocks):
            raise ValueError(f"{len(coefficients)} injection coefficients for a transformer of {len(transformer.blocks)} blocks")
        self.transformer = transformer
        self.tokens = ControlTokens()
        self.coefficients = coefficients
        self._handles = [transformer.patch_embedding.register_forward_hook(BridgeHook(bridge, self.tokens))]
        self._handles += [transformer.blocks[i].register_forward_pre_hook(BlockAdditionHook(a, self.tokens))
                          for i, a in enumerate(coefficients)]

    @contextmanager
    def control(self, tokens: torch.Tensor | None):
        """Passes inside run with these control tokens (None: plain Wan)."""
        previous = self.tokens.tokens
        self.tokens.tokens = tokens
        try:
            yield
        finally:
            self.tokens.tokens = previous

    def set_sequence_shard(self, start: int, end: int) -> None:
        self.tokens.set_sequence_shard(start, end)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
