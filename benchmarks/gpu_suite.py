"""The GPU suite: one script, one device call (at most 9 minutes on an H100/H200).

Random weights in the released configs (no download), bf16 transformers, float32 VAE:

1. a bf16 matmul (8192^3) on this GPU: the TFLOP/s ceiling the model figures are read against;
2. seconds per denoising step at 480p x 81, full vs causal-ref, for 1.3B and one 14B expert
   (CFG batched: one forward of batch 2), with achieved TFLOP/s from an analytic FLOP count
   (``bench_attention.step_flops``) and its share of the matmul ceiling;
3. one final A14B window at 480p x 81: without a distilled LoRA (2 timed steps of 30, CFG;
   the window time is extrapolated and labelled so) and with a 4-step distilled LoRA in the
   public lightx2v key layout (rank 64, random values; 4 steps, no CFG, one preview per step):
   seconds per window and time to the first preview;
4. planned vs measured peak memory for every public preset at 480p and 720p: one
   transformer forward at 2 blocks (its activations do not grow with depth) and the VAE decode,
   ``torch.cuda.max_memory_allocated`` against ``memory_plan`` (the weights term is exact).

``--toy``: the same code paths at toy size on the CPU (tiny configs, small windows), to test
the script without a GPU; its figures mean nothing about GPUs and are labelled so.
Prints a table per section and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench_attention import step_flops
from bench_planner import Probe, measure_ic, measure_vace, measure_vae, planned, shallow
from c2r.models.backend import GBuffers, RealifyConfig
from c2r.models.iclora import ICLoRAWan
from c2r.models.levers import Levers
from c2r.models.pipeline import RealifyPipeline
from c2r.models.registry import PRESETS, VAE_CONFIGS, build_tiny, place, transformer_class
from c2r.models.step_lora import load_step_lora
from c2r.models.text_encoder import build_tiny_text_encoder

PUBLIC = ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.1-vace-1.3b", "wan2.1-vace-14b"]
TEXT_TOKENS = 512


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    sync(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), min(runs), max(runs)


def matmul_tflops(device: str, toy: bool) -> float:
    n = 512 if toy else 8192
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    median, _, _ = timed(lambda: a @ b, device, 3 if toy else 10)
    return 2 * n**3 / median / 1e12


def new_transformer(preset, device: str, dtype):
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built straight in bf16: a 14B expert in fp32 would not fit beside the other
    try:
        with torch.device(device):
            model = transformer_class(preset)(**preset.transformer_config)
    finally:
        torch.set_default_dtype(previous)
    place(model, device, dtype)
    return model.eval()


def step_times(name: str, device: str, dtype, shape: tuple[int, int, int], repeats: int, ceiling: float) -> list[dict]:
    """Seconds per step (CFG batched) of one expert of ``name``, full and causal-ref."""
    preset = PRESETS[name]
    model = new_transformer(preset, device, dtype)
    frames, height, width = shape
    s = preset.vae_scale_spatial
    latent = (2, model.config.in_channels, (frames - 1) // 4 + 1, height // s, width // s)
    noisy = torch.randn(latent, device=device, dtype=dtype)
    reference = torch.randn((1, *latent[1:]), device=device, dtype=dtype)
    text = torch.randn(2, TEXT_TOKENS, model.config.text_dim, device=device, dtype=dtype)
    t = torch.tensor(500.0, device=device)
    tokens = latent[2] * (latent[3] // 2) * (latent[4] // 2)
    rows = []
    with torch.no_grad():
        for mode in ("full", "causal-ref"):
            ic = ICLoRAWan(model, mode)
            if mode == "full":
                seconds = timed(lambda: ic(noisy, [reference], t, text), device, repeats)
                reference_seconds = 0.0
            else:
                reference_seconds = timed(lambda: ic.encode_references([reference]), device, 1)[0]
                cache = ic.encode_references([reference])
                seconds = timed(lambda: ic(noisy, [], t, text, cache=cache), device, repeats)
                del cache
            flops, _ = step_flops(preset.transformer_config, tokens, 1, mode)
            tflops = 2 * flops / seconds[0] / 1e12  # batch 2
            rows.append(dict(model=name, mode=mode, step_s=seconds[0], step_min_s=seconds[1], step_max_s=seconds[2],
                             reference_pass_s=reference_seconds, tflops=tflops, share_of_matmul=tflops / ceiling))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return rows


def lightx2v_lora(path: Path, config: dict, rank: int) -> None:
    """A step-distilled LoRA in lightx2v's key layout (diffusion_model.blocks.N.*, lora_down/up, alpha), random."""
    from safetensors.torch import save_file

    d, f = config["num_attention_heads"] * config["attention_head_dim"], config["ffn_dim"]
    gen = torch.Generator().manual_seed(7)
    state = {}

    def pair(prefix, out_dim, in_dim):
        state[f"{prefix}.lora_down.weight"] = (torch.randn(rank, in_dim, generator=gen) * 0.01).to(torch.bfloat16)
        state[f"{prefix}.lora_up.weight"] = (torch.randn(out_dim, rank, generator=gen) * 0.01).to(torch.bfloat16)
        state[f"{prefix}.alpha"] = torch.tensor(float(rank))

    for i in range(config["num_layers"]):
        for module in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                pair(f"diffusion_model.blocks.{i}.{module}.{proj}", d, d)
        pair(f"diffusion_model.blocks.{i}.ffn.0", f, d)
        pair(f"diffusion_model.blocks.{i}.ffn.2", d, f)
    save_file(state, path)


def a14b_window(device: str, dtype, shape: tuple[int, int, int], toy: bool) -> list[dict]:
    """One final A14B window without and with a 4-step distilled LoRA; time to the first preview."""
    from diffusers import AutoencoderKLWan

    name = "tiny-a14b" if toy else "wan2.2-t2v-a14b"
    preset = PRESETS[name]
    if toy:
        components = build_tiny("a14b")
        for key in ("transformer", "transformer_2", "text_encoder"):
            components[key].to(device)
    else:
        components = {e: new_transformer(preset, device, dtype) for e in preset.experts}
        torch.manual_seed(1)
        components["vae"] = AutoencoderKLWan(**VAE_CONFIGS["wan2.1"]).to(device).eval()
        # a narrow random UMT5 at the real text width: the prompt is encoded once per window, not what is timed
        components["tokenizer"], components["text_encoder"] = build_tiny_text_encoder(4096)
        components["text_encoder"].to(device, dtype)
        components["boundary_ratio"] = preset.boundary_ratio
    frames, height, width = shape
    clip = GBuffers(torch.randint(0, 255, (frames, height, width, 3), dtype=torch.uint8).numpy())
    rows = []
    base = RealifyConfig(resolution="native", window=frames, overlap=0, shift=preset.shift, guidance_2=preset.guidance_2)
    pipeline = RealifyPipeline(components, device=device, max_sequence_length=preset.max_sequence_length,
                               levers=Levers(batched_cfg=True, preview_decoder="latent"))
    steps_done = []
    config = replace(base, steps=30, guidance=4.0)
    timed_steps = 2

    def stop_after(step, num_steps, preview):
        steps_done.append(time.perf_counter())

    def cancel_after():
        return len(steps_done) >= timed_steps

    from c2r.models.backend import Cancelled

    start = time.perf_counter()
    try:
        pipeline(clip, config, on_step=stop_after, cancel=cancel_after)
    except Cancelled:
        pass
    sync(device)
    per_step = (steps_done[-1] - steps_done[0]) / (len(steps_done) - 1) if len(steps_done) > 1 else steps_done[0] - start
    rows.append(dict(case="A14B final window, 30 steps CFG (extrapolated from 2 steps, decode not included)", steps=30,
                     step_s=per_step,
                     window_s=(steps_done[0] - start) + 29 * per_step, first_preview_s=None))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wan2.2_a14b_4step_lora.safetensors"
        lightx2v_lora(path, preset.transformer_config, rank=4 if toy else 64)
        load_step_lora(components, path)
    pipeline = RealifyPipeline(components, device=device, max_sequence_length=preset.max_sequence_length,
                               levers=Levers(batched_cfg=True, preview_decoder="latent"))
    previews = []
    config = replace(base, steps=4, guidance=1.0, preview_every=1)
    start = time.perf_counter()
    pipeline(clip, config, on_step=lambda step, n, preview: previews.append(time.perf_counter()) if preview is not None else None)
    sync(device)
    window = time.perf_counter() - start
    rows.append(dict(case="A14B final window, 4-step distilled LoRA (rank 64, lightx2v keys)", steps=4,
                     step_s=None, window_s=window, first_preview_s=previews[0] - start if previews else None))
    return rows


def planner_rows(device: str, toy: bool) -> list[dict]:
    """Measured vs planned transformer activations and VAE decode per preset at 480p and 720p (2 blocks)."""
    shapes = {"480p": (9, 64, 112), "720p": (9, 96, 160)} if toy else {"480p": (81, 480, 832), "720p": (81, 720, 1280)}
    models = ["tiny", "tiny-vace"] if toy else PUBLIC
    rows = []
    for name in models:
        preset = shallow(name, 2) if not PRESETS[name].is_tiny else PRESETS[name]
        model = new_transformer(preset, device, torch.float32 if device == "cpu" else torch.bfloat16)
        for label, (frames, height, width) in shapes.items():
            if preset.vae_scale_spatial == 16:
                height, width = (height // 32) * 32, (width // 32) * 32
            config = RealifyConfig(resolution="native", window=frames, overlap=0, guidance=5.0)
            if preset.is_vace:
                measured = measure_vace(preset, model, device, frames, height, width)
                plan = planned(preset, frames, height, width, config, False, ("activations",))
            else:
                measured = measure_ic(preset, model, device, frames, height, width, "full", 2)
                plan = planned(preset, frames, height, width, config, True, ("activations", "reference cache"))
            rows.append(dict(model=name, part="transformer (CFG batched)" if not preset.is_vace else "transformer",
                             resolution=label, measured_gib=measured / 2**30, planned_gib=plan / 2**30,
                             ratio=plan / measured))
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    for name in (["tiny"] if toy else ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b"]):  # one row per VAE (Wan2.1, Wan2.2)
        preset = PRESETS[name]
        for label, (frames, height, width) in shapes.items():
            if preset.vae_scale_spatial == 16:
                height, width = (height // 32) * 32, (width // 32) * 32
            config = RealifyConfig(resolution="native", window=frames, overlap=0)
            vae = measure_vae(preset.footprint.vae, device, frames, height, width)
            plan = planned(preset, frames, height, width, config, False, ("vae",))
            rows.append(dict(model=f"{preset.footprint.vae} VAE", part="decode", resolution=label,
                             measured_gib=vae / 2**30, planned_gib=plan / 2**30, ratio=plan / vae))
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="toy sizes on the CPU (tests the script; no GPU figures)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.toy else "cpu"
    if device == "cpu" and not args.toy:
        print("gpu_suite: no CUDA device; run on a GPU, or pass --toy to test the script on the CPU", file=sys.stderr)
        return 2
    dtype = torch.float32 if args.toy else torch.bfloat16
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (toy sizes: not GPU figures)"
    started = time.perf_counter()
    ceiling = matmul_tflops(device, args.toy)
    print(f"{gpu}: {'fp32' if args.toy else 'bf16'} matmul {ceiling:.1f} TFLOP/s; random weights, released configs"
          f"{' (toy)' if args.toy else ''}")
    shape = (9, 64, 112) if args.toy else (81, 480, 832)
    steps = []
    for name in (["tiny"] if args.toy else ["wan2.1-t2v-1.3b", "wan2.2-t2v-a14b"]):
        steps += step_times(name, device, dtype, shape, 1 if args.toy else 2, ceiling)
    print(f"{'model':18} {'mode':11} {'s/step':>8} {'min-max':>13} {'ref pass s':>10} {'TFLOP/s':>8} {'of matmul':>9}")
    for r in steps:
        print(f"{r['model']:18} {r['mode']:11} {r['step_s']:8.3f} {r['step_min_s']:6.3f}-{r['step_max_s']:<6.3f} "
              f"{r['reference_pass_s']:10.3f} {r['tflops']:8.2f} {r['share_of_matmul']:9.1%}")
    windows = a14b_window(device, dtype, shape, args.toy)
    for r in windows:
        first = f"{r['first_preview_s']:.2f} s" if r["first_preview_s"] is not None else "-"
        print(f"{r['case']}: window {r['window_s']:.2f} s, first preview {first}")
    memory = planner_rows(device, args.toy)
    print(f"{'model':18} {'part':26} {'res':5} {'measured GiB':>12} {'planned GiB':>12} {'plan/meas':>9}")
    for r in memory:
        print(f"{r['model']:18} {r['part']:26} {r['resolution']:5} {r['measured_gib']:12.3f} {r['planned_gib']:12.3f} "
              f"{r['ratio']:9.2f}")
    total = time.perf_counter() - started
    print(json.dumps(dict(benchmark="gpu_suite", device=gpu, toy=args.toy, seconds=round(total, 1),
                          matmul_tflops=round(ceiling, 2), steps=steps, a14b_windows=windows, planner=memory),
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
