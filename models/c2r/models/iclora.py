"""IC-LoRA conditioning (RealMaster): clean reference tokens in context with the noisy ones.

The rendered video is VAE-encoded and its latent tokens are appended after the noisy
latent tokens. Each reference token carries timestep 0 (it is clean) and the same RoPE
position as its noisy twin, so attention can match "this pixel of the render" with "this
pixel of the output" directly. The transformer's output is sliced back to the noisy tokens.
Several conditions (colour; optionally depth or edge videos, as C2R does) each become one
reference clip sharing the noisy positions.

The module reuses diffusers' own ``WanTransformer3DModel`` pieces (patch embedding, RoPE,
condition embedder, blocks, output head) and changes only attention, through diffusers'
processor API. Two attention modes:

``full``        everyone attends to everyone (the paper, LTX IC-LoRA).
``causal-ref``  reference tokens attend only to reference tokens and skip the prompt's
                cross-attention, so the whole reference stream depends on nothing that
                changes during sampling. Its per-layer keys/values are computed once per
                window (``encode_references``) and reused at every step and by both CFG
                branches; each step then runs only the noisy tokens (about half the work).
                The joint pass with the equivalent mask (``cache=None``) is what training
                runs, so a LoRA is trained under exactly the attention it is used with.

Reference downscale (LTX-2 IC-LoRA style): a reference clip may be encoded smaller than the
target (1/2 each side: a quarter of the tokens). Its tokens then get the RoPE positions of
the target tokens they cover (coordinate x factor per axis), computed by ``rope_at`` from
Wan's frequencies, so a reference token still lines up with its place in the output.

Attention goes through diffusers' dispatcher, so ``transformer.set_attention_backend(name)``
(flash, sage, cuDNN ...) reaches these processors as it does Wan's own.

Processors are stateless about the data: what a forward pass is doing (joint, reference or
noisy phase) sits in one ``_PassState`` shared by the transformer's processors. It stays set
after the pass so gradient checkpointing recomputes blocks under the same mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MethodType

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import WanAttnProcessor
from torch import nn

from .backend import ATTENTION_MODES

Rope = tuple[torch.Tensor, torch.Tensor]


@dataclass
class _PassState:
    phase: str = "idle"  # "idle" (plain Wan), "joint", "reference" or "noisy"
    mode: str = "full"
    num_noisy: int = 0
    cache: "ReferenceKVCache | None" = None


@dataclass
class ReferenceKVCache:
    """Per-layer self-attention keys/values of the reference tokens (batch 1, after RoPE).

    Valid for one transformer (one A14B expert) and one window's references.
    """

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


@dataclass
class ICInputs:
    """What the transformer blocks receive in a joint pass (exposed so tests can check it)."""

    tokens: torch.Tensor  # (B, S, D): noisy tokens, then each reference clip's tokens
    timestep: torch.Tensor  # (B, S): t for noisy tokens, 0 for reference tokens
    rope: Rope  # each (1, S, 1, head_dim): the noisy grid's table, then each clip's (same, or rescaled when smaller)
    num_noisy: int


def apply_rope(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Rotate interleaved channel pairs of x (B, S, H, d) by Wan's rotary table."""
    cos, sin = rope[0][..., 0::2], rope[1][..., 1::2]
    even, odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.flatten(-2).type_as(x)


WAN_ROPE_THETA = 10000.0  # WanRotaryPosEmbed's default, which every Wan checkpoint uses


def rope_at(rope: nn.Module, frames: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> Rope:
    """Wan's rotary table for a token grid at any (fractional) positions per axis.

    Wan's own ``rope`` module looks its table up by integer index; this computes the same
    angles for arbitrary positions (a downscaled reference's tokens sit at coordinate x factor).
    Tokens are ordered frame, row, column, as the patch embedding flattens them.
    """
    parts = []
    for dim, positions, shape in ((rope.t_dim, frames, (-1, 1, 1)), (rope.h_dim, rows, (1, -1, 1)),
                                  (rope.w_dim, cols, (1, 1, -1))):
        inverse = 1.0 / WAN_ROPE_THETA ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = torch.outer(positions.to(torch.float64).cpu(), inverse).repeat_interleave(2, dim=1)
        parts.append(angles.view(*shape, dim))
    size = (len(frames), len(rows), len(cols))
    angles = torch.cat([p.expand(*size, -1) for p in parts], dim=-1).reshape(1, -1, 1, rope.attention_head_dim)
    device = rope.freqs_cos.device
    return angles.cos().float().to(device), angles.sin().float().to(device)


def causal_ref_mask(seq_len: int, num_noisy: int, device) -> torch.Tensor:
    """(S, S) boolean, True = may attend: noisy queries see all, reference queries only references."""
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device)
    mask[num_noisy:, :num_noisy] = False
    return mask


def check_reference_shape(index: int, reference: torch.Tensor, noisy: torch.Tensor) -> None:
    """A reference clip has the noisy latents' channels and frames and at most their size."""
    same = reference.shape[1:3] == noisy.shape[1:3]
    if not same or reference.shape[3] > noisy.shape[3] or reference.shape[4] > noisy.shape[4]:
        raise ValueError(f"reference {index} has latent shape {tuple(reference.shape[1:])}, "
                         f"the noisy latents {tuple(noisy.shape[1:])}: encode both on the same grid "
                         "(a reference may only be spatially smaller, by the reference downscale)")


@dataclass
class SegmentModulation:
    """A joint pass's time modulation: (B, 6, D) for the first ``num_noisy`` tokens (at t), and for the
    reference tokens (at 0). Passed to a block as its ``temb`` in place of a (B, S, 6, D) tensor."""

    noisy: torch.Tensor
    reference: torch.Tensor
    num_noisy: int


def ic_block_forward(block: nn.Module, hidden: torch.Tensor, text: torch.Tensor, temb, rope: Rope) -> torch.Tensor:
    """A Wan transformer block's forward that also takes a ``SegmentModulation``.

    With one (B, 6, D) modulation it is diffusers' own forward. With a ``SegmentModulation`` it is
    the same arithmetic as that forward with a per-token (B, S, 6, D) modulation, without building
    it: each of the six shift/scale/gate vectors is applied to its segment. (An A14B block at
    480p x 81 would otherwise build 8 GB of float32 modulation per CFG branch.) Installed as the
    blocks' forward, so step-cache hooks, offload hooks and regional compilation still wrap it.
    """
    if isinstance(temb, torch.Tensor):
        return type(block).forward(block, hidden, text, temb, rope)
    segments = [(block.scale_shift_table + p.float()).chunk(6, dim=1) for p in (temb.noisy, temb.reference)]
    lengths = [temb.num_noisy, hidden.shape[1] - temb.num_noisy]

    def modulated(norm, x, shift: int, scale: int) -> torch.Tensor:
        parts = zip(x.split(lengths, dim=1), segments)
        return torch.cat([(norm(p.float()) * (1 + m[scale]) + m[shift]).type_as(x) for p, m in parts], dim=1)

    def gated(x, update, gate: int) -> torch.Tensor:
        parts = zip(x.split(lengths, dim=1), update.split(lengths, dim=1), segments)
        return torch.cat([(p.float() + u.float() * m[gate]).type_as(x) for p, u, m in parts], dim=1)

    hidden = gated(hidden, block.attn1(modulated(block.norm1, hidden, 0, 1), None, None, rope), 2)
    hidden = hidden + block.attn2(block.norm2(hidden.float()).type_as(hidden), text, None, None)
    return gated(hidden, block.ffn(modulated(block.norm3, hidden, 3, 4)), 5)


class ICSelfAttnProcessor:
    """Wan self-attention that records, reuses or masks the reference tokens' keys/values."""

    _attention_backend = None  # set by transformer.set_attention_backend(name)
    _parallel_config = None

    def __init__(self, state: _PassState, layer: int):
        self.state = state
        self.layer = layer

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        heads = attn.heads
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (heads, -1))
        key = attn.norm_k(attn.to_k(hidden_states)).unflatten(2, (heads, -1))
        value = attn.to_v(hidden_states).unflatten(2, (heads, -1))
        if rotary_emb is not None:
            query, key = apply_rope(query, rotary_emb), apply_rope(key, rotary_emb)

        state, mask = self.state, attention_mask
        if state.phase == "reference":
            state.cache.layers.append((key, value))
        elif state.phase == "noisy":
            ref_key, ref_value = state.cache.layers[self.layer]
            batch = key.shape[0]
            key = torch.cat([key, ref_key.expand(batch, -1, -1, -1)], dim=1)
            value = torch.cat([value, ref_value.expand(batch, -1, -1, -1)], dim=1)
        elif state.phase == "joint" and state.mode == "causal-ref":
            mask = causal_ref_mask(key.shape[1], state.num_noisy, key.device)

        out = dispatch_attention_fn(query, key, value, attn_mask=mask, backend=self._attention_backend,
                                    parallel_config=self._parallel_config)  # sequence parallel: parallel.sequence
        out = out.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


class ICCrossAttnProcessor(WanAttnProcessor):
    """Wan's text cross-attention; in ``causal-ref`` reference tokens skip it (output 0)."""

    def __init__(self, state: _PassState):
        super().__init__()
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        state = self.state
        if state.phase == "reference":
            return torch.zeros_like(hidden_states)
        if state.phase == "joint" and state.mode == "causal-ref":
            n = state.num_noisy
            noisy = super().__call__(attn, hidden_states[:, :n], encoder_hidden_states, attention_mask, rotary_emb)
            return torch.cat([noisy, torch.zeros_like(hidden_states[:, n:])], dim=1)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)


class ICLoRAWan(nn.Module):
    """A ``WanTransformer3DModel`` run with IC reference tokens; installs its processors on it.

    The transformer is dedicated to IC use afterwards (its processors read this wrapper's
    pass state); with no pass running they behave as plain Wan attention.
    """

    def __init__(self, transformer: nn.Module, attention_mode: str = "full"):
        super().__init__()
        self.transformer = transformer
        self._state = _PassState()
        self.attention_mode = attention_mode
        self.sequence_parallel = None  # parallel.sequence.SequenceParallel, set by enable_sequence_parallel
        for i, block in enumerate(transformer.blocks):
            block.attn1.set_processor(ICSelfAttnProcessor(self._state, i))
            block.attn2.set_processor(ICCrossAttnProcessor(self._state))
            block.forward = MethodType(ic_block_forward, block)

    @property
    def attention_mode(self) -> str:
        return self._state.mode

    @attention_mode.setter
    def attention_mode(self, mode: str) -> None:
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode={mode!r}: choose one of {ATTENTION_MODES}")
        self._state.mode = mode

    # --- the pieces -------------------------------------------------------------------
    def _tokens(self, latents: torch.Tensor) -> torch.Tensor:
        return self.transformer.patch_embedding(latents).flatten(2).transpose(1, 2).contiguous()

    def _grid(self, latents: torch.Tensor) -> tuple[int, int, int]:
        pt, ph, pw = self.transformer.config.patch_size
        return latents.shape[2] // pt, latents.shape[3] // ph, latents.shape[4] // pw

    def _rope(self, target: torch.Tensor, clips: list[torch.Tensor]) -> Rope:
        """One rotary table over ``clips`` laid end to end, positioned on ``target``'s token grid.

        A clip of the target's size gets Wan's own table; a smaller one (a downscaled
        reference) gets each token at its coordinate x (target size / clip size) per axis.
        """
        frames, rows, cols = self._grid(target)
        tables = []
        for clip in clips:
            f, h, w = self._grid(clip)
            if (f, h, w) == (frames, rows, cols):
                tables.append(self.transformer.rope(clip))
            else:
                tables.append(rope_at(self.transformer.rope, torch.arange(f) * (frames / f),
                                      torch.arange(h) * (rows / h), torch.arange(w) * (cols / w)))
        return torch.cat([c for c, _ in tables], dim=1), torch.cat([s for _, s in tables], dim=1)

    def _embed(self, timestep: torch.Tensor, text: torch.Tensor | None):
        """Time embeddings for a (B,) timestep, its six modulation vectors (B, 6, D), and the projected text."""
        embedder = self.transformer.condition_embedder
        frequencies = embedder.timesteps_proj(timestep).to(embedder.time_embedder.linear_1.weight.dtype)
        temb = embedder.time_embedder(frequencies).to(text.dtype if text is not None else self.transformer.dtype)
        proj = embedder.time_proj(embedder.act_fn(temb)).unflatten(-1, (6, -1))
        text = embedder.text_embedder(text) if text is not None else None
        return temb, proj, text

    def enable_sequence_parallel(self, sp) -> None:
        """Run every pass over ``sp``'s processes (``parallel.sequence``): each holds 1/N of the tokens."""
        sp.check_heads(self.transformer.config.num_attention_heads)
        self.sequence_parallel = sp
        for block in self.transformer.blocks:
            block.attn1.processor._parallel_config = sp.attention_config

    def _blocks(self, hidden, text, temb, rope, phase: str, num_noisy: int = 0, cache=None) -> torch.Tensor:
        """Run every block; ``temb``: one (B, 6, D) modulation, or a ``SegmentModulation`` in a joint pass.

        With sequence parallelism each rank runs its shard: 1/N of the noisy tokens, then 1/N of the
        reference tokens, so a ``SegmentModulation`` only needs its split moved to the local count."""
        sp, total = self.sequence_parallel, hidden.shape[1]
        if sp is not None:
            if phase == "joint" and self.attention_mode == "causal-ref":
                raise ValueError("sequence parallel runs inference passes; the masked causal-ref joint pass "
                                 "(training) runs on one process")
            hidden, rope = sp.shard(hidden, total, num_noisy), tuple(sp.shard(r, total, num_noisy) for r in rope)
            num_noisy = sp.local_noisy(num_noisy)
            if isinstance(temb, SegmentModulation):
                temb = SegmentModulation(temb.noisy, temb.reference, num_noisy)
        self._state.phase, self._state.num_noisy, self._state.cache = phase, num_noisy, cache
        transformer = self.transformer
        for block in transformer.blocks:
            if torch.is_grad_enabled() and transformer.gradient_checkpointing:
                hidden = transformer._gradient_checkpointing_func(block, hidden, text, temb, rope)
            else:
                hidden = block(hidden, text, temb, rope)
        if sp is not None and phase != "reference":  # the reference pass leaves only its (sharded) cache
            hidden = sp.gather(hidden, total, self._state.num_noisy * sp.world)
        return hidden

    def _head(self, hidden: torch.Tensor, temb: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Output norm, projection and unpatchify of the noisy tokens (all at one timestep)."""
        t = self.transformer
        shift, scale = (t.scale_shift_table.to(temb.device) + temb[:, None]).chunk(2, dim=1)
        hidden = (t.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
        hidden = t.proj_out(hidden)
        batch, _, frames, height, width = shape
        pt, ph, pw = t.config.patch_size
        hidden = hidden.reshape(batch, frames // pt, height // ph, width // pw, pt, ph, pw, -1)
        return hidden.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(batch, -1, frames, height, width)

    # --- public -----------------------------------------------------------------------
    def prepare(self, noisy: torch.Tensor, references: list[torch.Tensor], timestep: torch.Tensor) -> ICInputs:
        """The joint token sequence, per-token timesteps and RoPE for noisy + reference latents."""
        if not references:
            raise ValueError("IC-LoRA needs at least one reference latent video (the rendered colour)")
        for i, ref in enumerate(references):
            check_reference_shape(i, ref, noisy)
        batch = noisy.shape[0]
        refs = [r.expand(batch, -1, -1, -1, -1) for r in references]
        tokens = torch.cat([self._tokens(x) for x in (noisy, *refs)], dim=1)
        rope = self._rope(noisy, [noisy, *refs])
        num_noisy = self._tokens_in(noisy)
        t = timestep.reshape(-1).to(tokens.device, torch.float32).expand(batch)
        per_token = torch.cat([t[:, None].expand(batch, num_noisy), t.new_zeros(batch, tokens.shape[1] - num_noisy)], 1)
        return ICInputs(tokens, per_token, rope, num_noisy)

    def _tokens_in(self, latents: torch.Tensor) -> int:
        frames, rows, cols = self._grid(latents)
        return frames * rows * cols

    @torch.no_grad()
    def encode_references(self, references: list[torch.Tensor], target: torch.Tensor | None = None) -> ReferenceKVCache:
        """``causal-ref``: run the reference stream once and keep every layer's keys/values.

        target: a tensor shaped like the noisy latents, whose grid the (downscaled) references
        are positioned on; defaults to the first reference (references at full size).
        """
        if self.attention_mode != "causal-ref":
            raise ValueError("reference caching needs attention_mode='causal-ref' "
                             "(in 'full' the reference tokens see the noisy ones, so nothing is reusable)")
        refs = [r[:1] for r in references]
        tokens = torch.cat([self._tokens(r) for r in refs], dim=1)
        _, proj, _ = self._embed(torch.zeros(1, device=tokens.device), None)
        cache = ReferenceKVCache()
        no_text = tokens.new_zeros(1, 1, tokens.shape[-1])
        grid = refs[0] if target is None else target
        for i, ref in enumerate(refs):
            check_reference_shape(i, ref, grid)
        self._blocks(tokens, no_text, proj, self._rope(grid, refs), "reference", cache=cache)
        return cache

    def forward(self, noisy: torch.Tensor, references: list[torch.Tensor], timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor, cache: ReferenceKVCache | None = None) -> torch.Tensor:
        """Velocity prediction for the noisy latents (B, C, F, H, W).

        With ``cache`` (causal-ref) only the noisy tokens run; ``references`` may then be empty.
        """
        batch = noisy.shape[0]
        t = timestep.reshape(-1).to(noisy.device, torch.float32).expand(batch)
        if cache is not None:
            temb, proj, text = self._embed(t, encoder_hidden_states)
            hidden = self._blocks(self._tokens(noisy), text, proj, self._rope(noisy, [noisy]), "noisy", cache=cache)
            return self._head(hidden, temb, noisy.shape)
        inputs = self.prepare(noisy, references, t)
        temb, proj, text = self._embed(t, encoder_hidden_states)
        _, proj_reference, _ = self._embed(torch.zeros_like(t), None)  # references are clean: t = 0
        modulation = SegmentModulation(proj, proj_reference, inputs.num_noisy)
        hidden = self._blocks(inputs.tokens, text, modulation, inputs.rope, "joint", inputs.num_noisy)
        return self._head(hidden[:, : inputs.num_noisy], temb, noisy.shape)
