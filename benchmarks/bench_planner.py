"""Planner validation: measured peak tensor memory of real-width models vs ``memory_plan``.

CPU, random weights, the released transformer and VAE configs at reduced depth (``--layers``,
default 2), bf16 transformers and a float32 VAE as the daemon runs them. Memory is the
live-tensor accounting of ``c2r.models.tensor_peak`` (every tensor an operator returns, by its
storage, until the last view of it is gone; weights excluded), not RSS. On a GPU the same
script reads ``torch.cuda.max_memory_allocated`` instead.

For each case the planner is asked about the same preset at the same depth, so the figures
compare like with like; the planned terms are:

  transformer: "activations" + "reference cache" (one forward of one window: full joint pass
               with CFG batched or not, causal-ref noisy pass against its cache, VACE forward);
  vae:         "vae" (one decode of the window's latents).

Extrapolation to full depth: blocks run one after another without gradients, so one block's
transient activations are the same at 2 layers or 40; what grows with depth is the weights
(exact parameter counts) and the causal-ref cache (2 x layers x reference tokens x width,
exact), so a ratio measured at 2 layers holds at full depth for the activation term.

Prints a table and, last, one JSON line; exits 1 if any case is off by more than 25 %.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import torch

from c2r.models.backend import RealifyConfig
from c2r.models.iclora import ICLoRAWan
from c2r.models.levers import Levers
from c2r.models.memory_plan import plan_window
from c2r.models.registry import PRESETS, VAE_CONFIGS, place, transformer_class
from c2r.models.tensor_peak import TensorPeak

TEXT_TOKENS = 64
TOLERANCE = 0.25


class Probe:
    """Peak bytes above the start, the allocator's on a GPU, live-tensor accounting on the CPU."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self.tracker = TensorPeak().__enter__()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.tracker.__exit__(*exc)
            self.peak = self.tracker.peak
        return False


def shallow(name: str, layers: int):
    """The preset at ``layers`` blocks (VACE layers kept among them), for the planner and the model."""
    preset = PRESETS[name]
    cfg = {**preset.transformer_config, "num_layers": layers}
    if "vace_layers" in cfg:
        cfg["vace_layers"] = list(range(0, layers, 2))
    return replace(preset, transformer_config=cfg)


def build_transformer(preset, device: str):
    torch.manual_seed(0)
    with torch.device(device):
        model = transformer_class(preset)(**preset.transformer_config)
    place(model, device, torch.bfloat16)  # as the loader does: diffusers' float32-kept modules stay float32
    return model.eval()


def latent_size(preset, frames: int, height: int, width: int) -> tuple[int, int, int]:
    s = preset.vae_scale_spatial
    return (frames - 1) // 4 + 1, height // s, width // s


def measure_ic(preset, model, device, frames, height, width, mode: str, batch: int) -> int:
    channels = model.config.in_channels
    lf, lh, lw = latent_size(preset, frames, height, width)
    noisy = torch.randn(batch, channels, lf, lh, lw, device=device, dtype=model.dtype)
    reference = torch.randn(1, channels, lf, lh, lw, device=device, dtype=model.dtype)
    text = torch.randn(batch, TEXT_TOKENS, model.config.text_dim, device=device, dtype=model.dtype)
    ic = ICLoRAWan(model, mode)
    t = torch.tensor(500.0, device=device)
    with torch.no_grad():
        if mode == "full":
            with Probe(device) as probe:
                ic(noisy, [reference], t, text)
            return probe.peak
        with Probe(device) as probe:
            cache = ic.encode_references([reference])
            ic(noisy, [], t, text, cache=cache)
            del cache
        return probe.peak


def measure_vace(preset, model, device, frames, height, width) -> int:
    lf, lh, lw = latent_size(preset, frames, height, width)
    noisy = torch.randn(1, model.config.in_channels, lf, lh, lw, device=device, dtype=model.dtype)
    control = torch.randn(1, model.config.vace_in_channels, lf, lh, lw, device=device, dtype=model.dtype)
    text = torch.randn(1, TEXT_TOKENS, model.config.text_dim, device=device, dtype=model.dtype)
    with torch.no_grad(), Probe(device) as probe:
        model(noisy, torch.tensor([500.0], device=device), text, control_hidden_states=control, return_dict=False)
    return probe.peak


def measure_vae(vae_key: str, device, frames, height, width) -> int:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**VAE_CONFIGS[vae_key]).to(device).eval()
    scale = vae.config.scale_factor_spatial
    z = torch.randn(1, vae.config.z_dim, (frames - 1) // 4 + 1, height // scale, width // scale, device=device)
    with torch.no_grad(), Probe(device) as probe:
        vae.decode(z, return_dict=False)
    return probe.peak


def planned(preset, frames, height, width, config, batched: bool, terms) -> int:
    plan = plan_window(preset, frames, height, width, config, Levers(batched_cfg=batched))
    return sum(plan.components[t] for t in terms)


def cases(quick: bool):
    """(preset, frames, height, width) per row; the grid is native (the size is the model grid)."""
    shapes = [(5, 96, 160), (9, 128, 224)] if quick else [(5, 96, 160), (9, 128, 224), (17, 128, 224), (9, 192, 320)]
    models = ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.1-vace-1.3b"]
    return models, shapes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="transformer blocks built (the activation term is per block)")
    parser.add_argument("--quick", action="store_true", help="two shapes instead of four (CI-sized)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    models, shapes = cases(args.quick)
    rows = []
    for name in models:
        preset = shallow(name, args.layers)
        model = build_transformer(preset, device)
        for frames, height, width in shapes:
            if preset.vae_scale_spatial == 16 and (height % 32 or width % 32):
                continue
            config = RealifyConfig(resolution="native", window=frames, overlap=0, guidance=5.0)
            runs = []
            if preset.is_vace:
                runs.append(("vace", measure_vace(preset, model, device, frames, height, width),
                             planned(preset, frames, height, width, config, False, ("activations",))))
            else:
                for label, mode, batch in (("full cfg-batched", "full", 2), ("full", "full", 1),
                                           ("causal-ref", "causal-ref", 1)):
                    cfg = replace(config, attention_mode=mode)
                    terms = ("activations", "reference cache")
                    runs.append((label, measure_ic(preset, model, device, frames, height, width, mode, batch),
                                 planned(preset, frames, height, width, cfg, batch == 2, terms)))
            for label, measured, plan in runs:
                rows.append(dict(model=name, part=f"transformer {label}", frames=frames, height=height, width=width,
                                 measured_mib=measured / 2**20, planned_mib=plan / 2**20, ratio=plan / measured))
        del model
    for vae_key, name in (("wan2.1", "wan2.1-t2v-1.3b"), ("wan2.2", "wan2.2-ti2v-5b")):
        preset = PRESETS[name]
        for frames, height, width in shapes:
            if preset.vae_scale_spatial == 16 and (height % 32 or width % 32):
                continue
            config = RealifyConfig(resolution="native", window=frames, overlap=0)
            measured = measure_vae(vae_key, device, frames, height, width)
            plan = planned(preset, frames, height, width, config, False, ("vae",))
            rows.append(dict(model=f"{vae_key} VAE", part="decode", frames=frames, height=height, width=width,
                             measured_mib=measured / 2**20, planned_mib=plan / 2**20, ratio=plan / measured))
    label = f"{device.upper()}, random weights, released widths at {args.layers} layers, bf16 transformer / fp32 VAE"
    print(label)
    print(f"{'model':18} {'part':28} {'shape':>14} {'measured MiB':>12} {'planned MiB':>12} {'plan/meas':>9}")
    for r in rows:
        shape = f"{r['frames']}x{r['height']}x{r['width']}"
        print(f"{r['model']:18} {r['part']:28} {shape:>14} {r['measured_mib']:12.1f} {r['planned_mib']:12.1f} {r['ratio']:9.2f}")
    worst = max(abs(r["ratio"] - 1) for r in rows)
    print(json.dumps(dict(benchmark="planner", label=label, tolerance=TOLERANCE, worst_relative_error=round(worst, 3),
                          within_tolerance=worst <= TOLERANCE, rows=[{k: (round(v, 3) if isinstance(v, float) else v)
                                                                      for k, v in r.items()} for r in rows])))
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
