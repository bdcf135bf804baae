"""Sequence (context) parallelism: one window's tokens over N processes, for IC-LoRA, VACE and C2R.

VACE and C2R run stock diffusers transformers, so they use diffusers' context parallelism
whole: its hooks split the tokens at the first block and gather them at the output
(``enable_context_parallel``; Wan's own plan for C2R, whose control tokens are sharded alike,
and a plan for the VACE transformer, which ships none). The IC-LoRA wrapper runs the blocks
itself, so it shards as described next.

Attention is diffusers' own Ulysses context parallelism: the self-attention processors get a
diffusers ``ParallelConfig`` and ``dispatch_attention_fn`` exchanges heads for sequence with
all-to-alls, so each process attends its share of the queries against every key. (Its ring
variant needs a kernel that returns the log-sum-exp, flash or cuDNN, so it does not run on
the CPU; Ulysses runs on gloo and NCCL alike.) What diffusers' own sharding hooks
(``enable_parallelism`` with Wan's ``_cp_plan``) cannot do is the IC token layout: noisy
tokens followed by reference tokens, each segment with its own RoPE table, per-token
timesteps, and the causal-ref cache holding only reference keys. So the wrapper shards
itself, here, and diffusers does the attention:

- every segment (the noisy tokens; the reference tokens) is split in N equal contiguous
  parts and process r keeps part r of each, with the matching rows of RoPE and per-token
  modulation. Attention does not depend on the order of the keys, so [noisy_r, refs_r] on
  each process is as good as the original order;
- causal-ref: the reference pass runs sharded too, so each process caches the keys/values
  of its own reference shard, and in the noisy pass its local noisy keys plus its cached
  reference keys are exactly its shard of the joint key sequence;
- after the blocks the shards are gathered (all_gather) back into the original order, and
  the output head runs as on one process.

The text cross-attention needs no exchange (every process holds the whole prompt). The
training pass with the causal-ref mask is not sharded (a mask over the full sequence would
have to travel with the all-to-all): sequence parallelism is for inference windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class SequenceParallel:
    """This process's place in a sequence-parallel group and diffusers' attention config for it."""

    rank: int
    world: int
    group: "dist.ProcessGroup | None" = None
    attention_config: object | None = None  # diffusers ParallelConfig (Ulysses over the group)

    @classmethod
    def from_process_group(cls, device: torch.device | str = "cpu") -> "SequenceParallel":
        """The default process group (``torch.distributed.init_process_group`` done by the caller) as one group."""
        from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(device)
        # the mesh and config diffusers' enable_parallelism would build; made here because that helper
        # also installs Wan's sharding hooks (wrong for IC tokens) and derives the device from the
        # accelerator count, which is 0 on a CPU
        mesh = dist.device_mesh.init_device_mesh(device.type, (1, world), mesh_dim_names=("ring", "ulysses"))
        cp = ContextParallelConfig(ulysses_degree=world, mesh=mesh)
        config = ParallelConfig(context_parallel_config=cp)
        config.setup(rank, world, device, mesh=mesh)
        return cls(rank, world, dist.group.WORLD, config)

    # --- token bookkeeping ----------------------------------------------------------------------
    def _parts(self, total: int, num_noisy: int) -> list[tuple[int, int]]:
        """[start, end) of every segment's part on each rank, rank-major: [(noisy_0), (refs_0), (noisy_1), ...]."""
        segments = [(0, num_noisy), (num_noisy, total)] if 0 < num_noisy < total else [(0, total)]
        for start, end in segments:
            if (end - start) % self.world:
                raise ValueError(f"sequence parallel over {self.world} processes: a segment of {end - start} tokens "
                                 f"(of {total}, {num_noisy} noisy) does not split evenly; use a window and grid whose "
                                 f"latent frames x rows x columns is a multiple of {self.world}")
        parts = []
        for r in range(self.world):
            for start, end in segments:
                size = (end - start) // self.world
                parts.append((start + r * size, start + (r + 1) * size))
        return parts

    def shard(self, x: torch.Tensor, total: int, num_noisy: int, dim: int = 1) -> torch.Tensor:
        """This rank's tokens of ``x``, whose ``dim`` holds all ``total`` tokens."""
        if x.shape[dim] != total:
            raise ValueError(f"sharding {tuple(x.shape)} along dim {dim}: expected {total} tokens there")
        per_rank = len(self._parts(total, num_noisy)) // self.world
        mine = self._parts(total, num_noisy)[self.rank * per_rank : (self.rank + 1) * per_rank]
        return torch.cat([x.narrow(dim, start, end - start) for start, end in mine], dim=dim)

    def local_noisy(self, num_noisy: int) -> int:
        return num_noisy // self.world

    def gather(self, x: torch.Tensor, total: int, num_noisy: int) -> torch.Tensor:
        """The full (B, total, D) sequence in the original order from every rank's (B, total / N, D) shard."""
        shards = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(shards, x.contiguous(), group=self.group)
        parts = self._parts(total, num_noisy)
        per_rank = len(parts) // self.world
        pieces = {}
        for r, shard in enumerate(shards):
            offset = 0
            for start, end in parts[r * per_rank : (r + 1) * per_rank]:
                pieces[start] = shard[:, offset : offset + end - start]
                offset += end - start
        return torch.cat([pieces[start] for start in sorted(pieces)], dim=1)

    def check_heads(self, heads: int) -> None:
        if heads % self.world:
            raise ValueError(f"sequence parallel over {self.world} processes: the model's {heads} attention heads do "
                             f"not split evenly (Ulysses gives each process heads / {self.world}); use a divisor of {heads}")


def vace_plan() -> dict:
    """Where diffusers' context-parallel hooks split and gather ``WanVACETransformer3DModel`` (it ships none).

    Wan's own plan (``WanTransformer3DModel._cp_plan``: RoPE, the first block's input, the output
    projection) plus the first VACE block's inputs: the control tokens lie on the same token grid
    as the noisy ones, so splitting both the same way keeps every hint on its tokens' process.
    """
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    split = ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)
    return {
        "rope": {0: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
                 1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True)},
        "vace_blocks.0": {"hidden_states": split, "control_hidden_states": split},
        "blocks.0": {"hidden_states": split},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }


def enable_context_parallel(transformer, sp: SequenceParallel, plan: dict) -> None:
    """diffusers' context parallelism on a stock Wan transformer: its hooks shard, its processors attend.

    What ``ModelMixin.enable_parallelism`` does, minus deriving the device from the accelerator
    count (0 on a CPU, where gloo runs the tests).
    """
    from diffusers.hooks.context_parallel import apply_context_parallel

    sp.check_heads(transformer.config.num_attention_heads)
    for module in transformer.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "_parallel_config"):
            processor._parallel_config = sp.attention_config
    apply_context_parallel(transformer, sp.attention_config.context_parallel_config, plan)


def enable_c2r_sequence_parallel(pipeline, sp: SequenceParallel) -> None:
    """C2R over the group: Wan's own context-parallel plan on its stock transformer, control tokens sharded alike.

    diffusers splits the tokens in N equal contiguous parts at the first block's input (after the
    bridge hook on the patch embedding, which still sees them whole); the injected block additions
    from block 1 on see this rank's part, so the control injection is told the matching slice
    (``ControlInjection.set_sequence_shard``) whenever a window's control tokens are made.
    """
    transformer = pipeline.transformer
    plan = {name: entry for name, entry in type(transformer)._cp_plan.items() if name}  # timestep is (B,): not split
    enable_context_parallel(transformer, sp, plan)
    make_tokens = pipeline.control_tokens

    def control_tokens(color: torch.Tensor) -> torch.Tensor:
        tokens = make_tokens(color)
        share = tokens.shape[1] // sp.world
        pipeline.injection.set_sequence_shard(sp.rank * share, (sp.rank + 1) * share)
        return tokens

    pipeline.control_tokens = control_tokens
