"""Training the testbed's tiny models on the CPU: the Wan VAE, a base denoiser, IC-LoRAs.

Three stages, each the real diffusers class at toy size, each seeded and step-bounded (so a
rerun gives the same weights on the same machine):

1. ``train_vae``: ``AutoencoderKLWan`` (4x spatial, 4x temporal, 16 latent channels) learns a
   round trip of both the coarse and the "real" clips, on random 17- and 33-frame crops with a
   frame-change loss; its config then carries the latents' per-channel mean/std, as Wan's does.
   ``refine_decoder`` trains a trained VAE's decoder further with its encoder frozen (what the
   shipped preset's VAE had, without disturbing the transformer trained on its latents).
2. ``pretrain_base``: ``WanTransformer3DModel`` learns plain flow-matching denoising of the
   "real" clips (no reference tokens): the stand-in for a backbone pretrained on real video.
3. ``train_lora``: `c2r train`'s own ``Trainer`` adds and trains the IC-LoRA in one attention
   mode on pairs written by ``testbed.write_dataset``; ``train_feature_adapter``: the same Trainer
   trains a C2R-style feature adapter (over a random-weight DINOv3 stand-in) on the frozen base.

``tiny_trained.save`` writes the result as the committed ``tiny-trained`` preset and
``tiny_trained.replace_vae`` swaps in a refined VAE (see ``c2r.models.tiny_trained``).

On a shared CPU, run with ``torch.set_num_threads(1)``: these tiny ops spend more time in
thread hand-offs than in arithmetic (a VAE step: 0.25 s on 1 thread, 1.7-12 s on 2).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c2r.models.preprocess import frames_to_model, grid_for, model_to_frames
from c2r.models.tiny_trained import PRESET_NAME, VAE_CONFIG

from .testbed import PROMPT, render_clip


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _to_model(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0


@torch.no_grad()
def round_trip(vae, frames: np.ndarray) -> np.ndarray:
    """A uint8 clip through the VAE (encode, mode, decode) at its own size and length.

    The causal VAE maps 4k+1 frames to 4k+1; a clip of another length is padded with its last
    frame to the next 4k+1 (as the pipeline pads a window) and cut back after decoding."""
    grid = grid_for(frames.shape[1], frames.shape[2], "native")
    count = len(frames)
    padded = -(-(count - 1) // 4) * 4 + 1
    if padded != count:
        frames = np.concatenate([frames, np.repeat(frames[-1:], padded - count, axis=0)])
    decoded = vae.decode(vae.encode(frames_to_model(frames, grid)).latent_dist.mode()).sample.clamp(-1, 1)
    return model_to_frames(decoded, grid)[:count]


@torch.no_grad()
def init_time_convs_as_copies(vae) -> None:
    """Start the VAE's temporal resampling as frame copies (a still video round-trips like an image).

    Wan's temporal down/upsampling convolutions start random in diffusers; a tiny VAE trained
    from there on the CPU spends thousands of steps just learning that neighbouring frames are
    alike (round trip stuck near 19 dB at 1000 steps). As identities on the current frame's tap
    (upsampling: both output frames copy it), the temporal path starts where the per-frame
    spatial path is, and training refines motion from there.
    """
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanResample

    for module in vae.modules():
        if isinstance(module, WanResample) and module.mode in ("downsample3d", "upsample3d"):
            weight = module.time_conv.weight  # (out, in, 3, 1, 1): taps t-2, t-1, t
            weight.zero_()
            eye = torch.eye(weight.shape[1])
            for half in range(weight.shape[0] // weight.shape[1]):
                weight[half * weight.shape[1] : (half + 1) * weight.shape[1], :, -1, 0, 0] = eye
            module.time_conv.bias.zero_()


def new_vae(config: dict | None = None, seed: int = 0):
    """The untrained testbed VAE: seeded weights, time convolutions starting as copies."""
    from diffusers import AutoencoderKLWan

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(**(config or VAE_CONFIG))
    init_time_convs_as_copies(vae)
    return vae.eval()


def _training_clips(seeds: list[int], frames: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """The coarse and the real clip of every seed, in model layout."""
    clips = []
    for s in seeds:
        clip = render_clip(s, frames, size)
        clips += [_to_model(clip.coarse), _to_model(clip.real)]
    return clips


def _warmup_cosine(optimizer, steps: int, warmup: int):
    """Learning rate: linear warm-up over ``warmup`` steps, then cosine down to 2 % at ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(k, steps) / steps))))


def _random_crops(clips: list[torch.Tensor], crops, batch: int, generator: torch.Generator) -> torch.Tensor:
    """One training batch: a (frames, pixels) crop shape drawn from ``crops``, then ``batch`` random crops of it."""
    crop_frames, crop = crops[int(torch.randint(len(crops), (), generator=generator))]
    picks = []
    for _ in range(batch):
        video = clips[int(torch.randint(len(clips), (), generator=generator))]
        t0 = int(torch.randint(video.shape[2] - crop_frames + 1, (), generator=generator))
        y0 = int(torch.randint(video.shape[3] - crop + 1, (), generator=generator))
        x0 = int(torch.randint(video.shape[4] - crop + 1, (), generator=generator))
        picks.append(video[:, :, t0 : t0 + crop_frames, y0 : y0 + crop, x0 : x0 + crop])
    return torch.cat(picks)


def train_vae(seeds: list[int], frames: int, size: tuple[int, int], steps: int,
              crops: tuple[tuple[int, int], ...] = ((17, 24), (33, 16)), batch: int = 4, lr: float = 2e-3,
              warmup: int = 100, seed: int = 0, log=print, held_out: list[int] | None = None, eval_every: int = 0,
              snapshot: Path | None = None, config: dict | None = None, temporal_weight: float = 1.0):
    """Train the testbed VAE on crops of the coarse and real clips of ``seeds``; returns (vae, history).

    ``crops``: (frames, pixels) shapes, one drawn per step (every sample of a batch alike). The
    VAE is recurrent in time: it works in chunks (1 frame, then 4 at a time), each reading the
    causal caches the last one left, so its error compounds over chunks it never trained on.
    With 9-frame crops only (3 latent frames) a 33-frame clip fell from 27 dB in its first
    chunks to 16 dB in its last; crops of 17 and 33 frames (5 and 9 latent frames), made small
    in space to keep a step's cost, train that recurrence as long as the windows run.
    ``held_out``/``eval_every``: log the round-trip PSNR of those seeds every so many steps
    (and save the weights to ``snapshot`` then, when given). Learning rate: linear warm-up, then cosine.
    Loss: MSE of the frames plus ``temporal_weight`` x MSE of their frame-to-frame changes: the
    chunks are decoded one after another, and an error that changes pattern from one chunk to
    the next flickers every 4 frames (and at every window seam, which sits on a chunk boundary)
    even when each frame alone is close."""
    longest = max(max(f for f, _ in crops), frames)
    clips = _training_clips(seeds, longest, size)
    vae = new_vae(config, seed)
    vae.train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    schedule = _warmup_cosine(optimizer, steps, warmup)
    generator = torch.Generator().manual_seed(seed)
    history, started = [], time.perf_counter()
    for step in range(1, steps + 1):
        x = _random_crops(clips, crops, batch, generator)
        decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample
        loss = F.mse_loss(decoded, x)
        if temporal_weight:
            loss = loss + temporal_weight * F.mse_loss(decoded.diff(dim=2), x.diff(dim=2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if held_out and eval_every and (step % eval_every == 0 or step == steps):
            vae.eval()
            score = vae_psnr(vae, held_out, frames, size)
            vae.train()
            history.append({"step": step, "loss": float(loss.detach()), "psnr": score,
                            "seconds": round(time.perf_counter() - started, 1)})
            log(json.dumps({"stage": "vae", **history[-1]}))
            if snapshot is not None:
                torch.save(vae.state_dict(), snapshot)
    vae.eval()
    return vae, history


def refine_decoder(vae, seeds: list[int], steps: int, size: tuple[int, int],
                   crops: tuple[tuple[int, int], ...] = ((17, 24), (33, 16)), batch: int = 4, lr: float = 1e-3,
                   warmup: int = 30, temporal_weight: float = 1.0, seed: int = 0, log=print,
                   held_out: list[int] | None = None, eval_every: int = 0, snapshot: Path | None = None) -> list[dict]:
    """Train the decoder of a trained VAE further with its encoder frozen, on long crops (see
    ``train_vae``: crops, loss); returns the history.

    The latents stay exactly what they were, so a transformer trained on them (the preset's base
    and IC-LoRA) stays valid: only what they decode to improves. The shipped VAE, trained on
    9-frame crops, decoded the later chunks of a clip ever worse (27 dB in a 33-frame clip's
    first chunks, 16 dB in its last), and its chunk boundaries flickered."""
    longest = max(f for f, _ in crops)
    clips = _training_clips(seeds, longest, size)
    vae.requires_grad_(False)
    decoder = [vae.post_quant_conv, vae.decoder]
    params = [p for module in decoder for p in module.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = _warmup_cosine(optimizer, steps, warmup)
    generator = torch.Generator().manual_seed(seed)
    history, started = [], time.perf_counter()
    vae.eval()
    for step in range(1, steps + 1):
        x = _random_crops(clips, crops, batch, generator)
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.mode()
        decoded = vae.decode(latents).sample
        loss = F.mse_loss(decoded, x) + temporal_weight * F.mse_loss(decoded.diff(dim=2), x.diff(dim=2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % 25 == 0:
            log(json.dumps({"stage": "decoder", "step": step, "loss": float(loss.detach()),
                            "seconds": round(time.perf_counter() - started, 1)}))
        if held_out and eval_every and (step % eval_every == 0 or step == steps):
            history.append({"step": step, "loss": float(loss.detach()), "psnr": vae_psnr(vae, held_out, 17, size),
                            "seconds": round(time.perf_counter() - started, 1)})
            log(json.dumps({"stage": "decoder", **history[-1]}))
            if snapshot is not None:
                torch.save(vae.state_dict(), snapshot)
    vae.requires_grad_(False)
    return history


def vae_psnr(vae, seeds: list[int], frames: int, size: tuple[int, int]) -> dict:
    """Round-trip PSNR (dB) of held-out clips, coarse and real separately."""
    coarse, real = [], []
    for s in seeds:
        clip = render_clip(s, frames, size)
        coarse.append(psnr(clip.coarse, round_trip(vae, clip.coarse)))
        real.append(psnr(clip.real, round_trip(vae, clip.real)))
    return {"coarse": float(np.mean(coarse)), "real": float(np.mean(real))}


@torch.no_grad()
def set_latent_statistics(vae, seeds: list[int], frames: int, size: tuple[int, int]) -> None:
    """Per-channel mean/std of the VAE's latents over the coarse and real clips of ``seeds``, into its
    config (Wan's VAE carries these for real video; the transformer sees normalised latents)."""
    grid = grid_for(*size, "native")
    latents = []
    for s in seeds:
        clip = render_clip(s, frames, size)
        latents += [vae.encode(frames_to_model(v, grid)).latent_dist.mode() for v in (clip.coarse, clip.real)]
    stacked = torch.cat(latents, dim=2)
    vae.register_to_config(latents_mean=stacked.mean(dim=(0, 2, 3, 4)).tolist(),
                           latents_std=stacked.std(dim=(0, 2, 3, 4)).clamp_min(1e-6).tolist())


def pretrain_base(components: dict, seeds: list[int], frames: int, size: tuple[int, int], steps: int, lr: float = 1e-3,
                  seed: int = 0, timestep_shift: float = 3.0, log=print) -> list[dict]:
    """The base model in miniature: all transformer weights learn flow-matching denoising of the
    "real" clips with no reference tokens (its output domain, as Wan's is real video)."""
    from c2r.models.pipeline import RealifyPipeline
    from c2r.models.sampler import add_noise

    pipeline = RealifyPipeline(components, attention_mode="full", max_sequence_length=32)
    transformer = components["transformer"]  # outside an IC pass its processors are plain Wan attention
    grid = grid_for(*size, "native")
    with torch.no_grad():
        clean = [pipeline.encode(frames_to_model(render_clip(s, frames, size).real, grid)) for s in seeds]
        text = pipeline.prompts.encode(PROMPT, "cpu", torch.float32)
    transformer.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / 50) * (0.1 + 0.9 * (1 - k / steps)))
    generator = torch.Generator().manual_seed(seed)
    history, started, running = [], time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        x0 = clean[int(torch.randint(len(clean), (), generator=generator))]
        u = torch.rand((), generator=generator).item()
        sigma = timestep_shift * u / (1 + (timestep_shift - 1) * u)
        noise = torch.randn(x0.shape, generator=generator)
        velocity = transformer(hidden_states=add_noise(x0, noise, sigma), timestep=torch.tensor([sigma * 1000.0]),
                               encoder_hidden_states=text, return_dict=False)[0]
        loss = F.mse_loss(velocity, noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running += float(loss.detach())
        if step % 200 == 0 or step == steps:
            history.append({"step": step, "loss": running / (200 if step % 200 == 0 else step % 200),
                            "seconds": round(time.perf_counter() - started, 1)})
            running = 0.0
            log(json.dumps({"stage": "base", **history[-1]}))
    transformer.eval().requires_grad_(False)
    return history


def train_lora(components: dict, mode: str, data_dir: Path, out_dir: Path, steps: int, frames: int, rank: int = 16,
               lr: float = 3e-3, seed: int = 0):
    """`c2r train`'s Trainer on the testbed pairs, in attention ``mode``, on these components.

    References are trained at full and half size (``reference_downscales = [1, 2]``), so the
    preview preset's half-size references are in distribution too. Returns the Trainer.
    """
    from .train import Trainer, load_config

    config = load_config(None, dict(model=PRESET_NAME, rank=rank, attention_mode=mode, num_frames=frames,
                                    resolution="native", reference_downscales=[1, 2], max_steps=steps,
                                    warmup_steps=max(1, steps // 20), learning_rate=lr, checkpoint_every=0,
                                    validation_every=0, gradient_checkpointing=False, max_grad_norm=1.0,
                                    timestep_shift=3.0, seed=seed))
    trainer = Trainer(config, data_dir, out_dir, components=components)
    trainer.train()
    return trainer


def train_feature_adapter(components: dict, data_dir: Path, out_dir: Path, steps: int, frames: int, lr: float = 3e-3,
                          seed: int = 0, checkpoint_every: int = 0):
    """`c2r train`'s Trainer with ``conditioning = "feature-adapter"`` on the testbed pairs: a C2R-style
    adapter + bridge over the DINOv3 STAND-IN (random weights, ``dino.StandinDino``) on these components'
    frozen base, with ``train_lora``'s schedule, so the two compare at the same budget. Returns the Trainer
    (its adapter is written to ``out_dir/adapter``)."""
    from .train import Trainer, load_config

    config = load_config(None, dict(model=PRESET_NAME, conditioning="feature-adapter", feature_encoder="standin",
                                    num_frames=frames, resolution="native", max_steps=steps,
                                    warmup_steps=max(1, steps // 20), learning_rate=lr, checkpoint_every=checkpoint_every,
                                    validation_every=0, gradient_checkpointing=False, max_grad_norm=1.0,
                                    timestep_shift=3.0, seed=seed))
    trainer = Trainer(config, data_dir, out_dir, components=components)
    trainer.train()
    return trainer
