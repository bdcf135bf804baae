"""RealifyPipeline: one window of coarse G-buffers in, realistic frames out (IC-LoRA on Wan).

Reads top to bottom like a diffusers pipeline: prompt -> embeddings, G-buffers -> condition
videos on the model grid, VAE-encode the reference clips, denoise with IC-LoRA conditioning,
VAE-decode, back to the input size.

Long sequences (the ``prefix`` of ``Backend.realify_window``): the daemon receives a live
stream and runs windows one by one, so two windows are never denoised together and latent
blending of their overlap is not available. Instead each window is conditioned on the
frames the previous window already produced: its first P = 4j+1 frames are those frames,
VAE-encoded to exactly j+1 latent frames (the VAE is causal in time). At every step those
latent frames are replaced by the clean prefix latents re-noised to the current sigma with
the window's own noise (RePaint-style pinning), so the model generates the new frames as a
continuation of the old ones; what it decodes for the prefix is their VAE round trip, so the
new frames are shifted to continue the prefix as emitted (``pinning.hand_over``, fading out
over the window). A final partial window is padded to 4k+1 frames by repeating
its last frame and cropped back.

Previews (``config.preview_every``): the x0 estimate of a step is shown either through the
full VAE or, cheaper, through a linear latent->RGB map fitted on this window's own colour
reference (``latent_preview``); ``Levers.preview_decoder`` picks which.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .backend import Cancelled, GBuffers, RealifyConfig
from .latents import LatentCodec
from .iclora import ICLoRAWan, ReferenceKVCache
from .latent_preview import LatentToRGB
from .levers import Levers
from .pinning import check_suffix, hand_over, pin_ends, suffix_latents
from .preprocess import Grid, frames_to_model, grid_for, model_to_frames, prepare_conditions
from .sampler import add_noise, euler_step, expert_for, flow_sigmas, guided, predicted_clean, timestep_of, uses_cfg
from .text_encoder import PromptEncoder
from .windows import padded_length

DEFAULT_SHIFT = 5.0  # when a config leaves the shift to the model and no preset filled it in

# on_step(step, num_steps, preview) with preview (T, H, W, 3) uint8 on preview steps, else None
StepFn = Callable[[int, int, "np.ndarray | None"], None]


def pad_to_wan_length(clip: GBuffers) -> GBuffers:
    """Repeat the last frame until the clip has 4k+1 frames (Wan's VAE needs it)."""
    extra = padded_length(clip.num_frames) - clip.num_frames

    def pad(a):
        return None if a is None or not extra else np.concatenate([a, np.repeat(a[-1:], extra, axis=0)])

    if not extra:
        return clip
    return GBuffers(pad(clip.color), clip.color_space, pad(clip.depth), clip.depth_kind, pad(clip.normals), pad(clip.edges))


class ModelPlacement:
    """Model offloading: components live on the CPU and the one in use moves to the device.

    Only one large component is resident at a time (text encoder, then an A14B expert, then
    the other), which is what lets two 14B experts share one 80 GB GPU. Moves happen when
    the component changes: once per prompt, and per window at most once per expert.
    """

    def __init__(self, device: torch.device, managed: list[torch.nn.Module]):
        self.device = device
        self.managed = {id(m) for m in managed}  # others stay where they are (streamed or resident)
        self.active: torch.nn.Module | None = None

    def use(self, module: torch.nn.Module) -> None:
        """``module`` is about to run: the managed one in use leaves the device first (even when
        ``module`` itself is streamed by offload hooks and not managed here)."""
        if module is self.active:
            return
        self.release()
        if id(module) in self.managed:
            module.to(self.device)
            self.active = module

    def release(self) -> None:
        """Send the managed module in use back to the CPU (the text encoder once the prompts are encoded)."""
        if self.active is not None:
            self.active.to("cpu")
            self.active = None


@dataclass
class _Window:
    """Everything about one window that stays fixed while it is denoised."""

    grid: Grid
    num_frames: int
    references: list[torch.Tensor]  # normalised float32 latents, one per reference condition (maybe downscaled)
    color: torch.Tensor  # the rendered colour's latents at full size, where strength < 1 starts
    prefix_latents: torch.Tensor | None  # clean latents of the already-generated frames
    suffix_latents: torch.Tensor | None  # clean latents the window must end on (an anchor-parallel chunk)
    noise: torch.Tensor
    latent_to_rgb: LatentToRGB | None = None  # the cheap preview decoder, fitted on this window


class RealifyPipeline:
    """The IC-LoRA realify pipeline over the components of a registry preset."""

    def __init__(self, components: dict, attention_mode: str | None = None, max_sequence_length: int = 512,
                 device: torch.device | str | None = None, placement: "ModelPlacement | None" = None,
                 levers: Levers | None = None):
        """attention_mode: fixed by a trained LoRA's metadata; None follows each call's config
        (or ``causal-ref`` when the levers ask for it).

        device: where the denoising runs; defaults to the transformer's (set it when weights are offloaded).
        placement: with model offloading, moves each large component onto the device when it is used.
        levers: the run-time switches this pipeline honours (batched CFG, causal-ref, preview
        decoder, step-cache contexts); the load-time ones are applied by the backend.
        """
        self.levers = levers or Levers()
        self.device = torch.device(device) if device is not None else components["transformer"].device
        self.placement = placement
        self.vae = components["vae"]
        self.experts = {name: ICLoRAWan(components[name], attention_mode or "full")
                        for name in ("transformer", "transformer_2") if components.get(name) is not None}
        self.boundary_ratio = components.get("boundary_ratio")
        self.prompts = PromptEncoder(components["tokenizer"], components["text_encoder"], max_sequence_length,
                                     onload=placement.use if placement else None)
        self.fixed_attention_mode = attention_mode
        self.latents = LatentCodec(self.vae)

    @property
    def dtype(self) -> torch.dtype:
        return self.experts["transformer"].transformer.dtype

    @property
    def grid_multiple(self) -> int:
        """Pixels per transformer token side: the VAE's compression x the patch (16; Wan2.2 TI2V: 32)."""
        return self.vae.spatial_compression_ratio * self.experts["transformer"].transformer.config.patch_size[1]

    # --- the window -------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, clip: GBuffers, config: RealifyConfig, prefix: np.ndarray | None = None, seed: int | None = None,
                 on_step: StepFn | None = None, cancel: Callable[[], bool] | None = None,
                 suffix: np.ndarray | None = None) -> np.ndarray:
        """Realify one window; returns (T, H, W, 3) uint8 at the input size, T = clip.num_frames."""
        config.validate()
        mode = self.fixed_attention_mode or ("causal-ref" if self.levers.causal_ref else config.attention_mode)
        for expert in self.experts.values():
            expert.attention_mode = mode
            if expert.transformer.is_cache_enabled:
                expert.transformer._reset_stateful_cache()  # step caches are per window
        # 1. prompt embeddings (cached per prompt)
        cond_embeds = self.prompts.encode(config.prompt, self.device, self.dtype)
        uncond_embeds = None
        if uses_cfg(config.guidance):
            uncond_embeds = self.prompts.encode(config.negative_prompt, self.device, self.dtype)
        if self.placement is not None:
            self.placement.release()  # the text encoder leaves before the VAE encodes the references
        # 2. G-buffers -> reference latents, prefix latents, noise
        window = self._prepare_window(clip, config, prefix, config.seed if seed is None else seed, suffix)
        # 3. denoise
        latents = self._denoise(window, config, cond_embeds, uncond_embeds, on_step, cancel)
        # 4. decode, back to the input size, crop the padding frames; the new frames continue the prefix as emitted
        frames = self._to_frames(latents, window)
        return frames if prefix is None else hand_over(frames, np.asarray(prefix))

    def _prepare_window(self, clip: GBuffers, config: RealifyConfig, prefix, seed: int, suffix=None) -> _Window:
        if config.reference[0] != "color":
            raise ValueError(f"reference={config.reference}: the rendered colour is always the first reference clip "
                             "(it anchors the output and is where strength < 1 starts); use e.g. ('color', 'depth')")
        grid = grid_for(*clip.size, config.resolution, self.grid_multiple)
        padded = pad_to_wan_length(clip)
        conditions = prepare_conditions(padded, grid, self.vae.device, self.vae.dtype, include=config.reference)
        missing = [name for name in config.reference if name not in conditions]
        if missing:
            raise ValueError(f"reference condition(s) {missing} requested but the clip has no such plane: "
                             f"send {' and '.join(missing)} frames or use reference=('color',)")
        factor = config.reference_downscale
        videos = self.reference_videos(conditions, config.reference, factor)  # colour first
        references = [self.latents.encode(v).to(self.device) for v in videos]
        generator = torch.Generator("cpu").manual_seed(int(seed))  # drawn on the CPU: same frames on any device
        noise = torch.randn(self._latent_shape(conditions["color"]), generator=generator).to(self.device)
        color = references[0]
        if factor != 1 and config.strength < 1.0:  # strength < 1 starts from the full-size colour latents
            color = self.latents.encode(conditions["color"]).to(self.device)
        latent_to_rgb = None
        if config.preview_every and self.levers.preview_decoder == "latent":
            latent_to_rgb = LatentToRGB.fit(references[0], videos[0])
        return _Window(grid, clip.num_frames, references, color, self._prefix_latents(prefix, clip, grid),
                       self._suffix_latents(suffix, clip, grid), noise, latent_to_rgb)

    def _latent_shape(self, video: torch.Tensor) -> tuple[int, ...]:
        """Wan VAE latents of a (1, 3, 4k+1, H, W) video: (1, C, k+1, H/s, W/s)."""
        scale = self.vae.spatial_compression_ratio
        _, _, frames, height, width = video.shape
        return 1, self.vae.config.z_dim, (frames - 1) // 4 + 1, height // scale, width // scale

    def reference_videos(self, conditions: dict, names, factor: int) -> list[torch.Tensor]:
        """The reference condition videos at the reference downscale ``factor`` (training uses this too,
        so a LoRA is trained on references shrunk exactly as inference shrinks them)."""
        return [conditions[n] if factor == 1 else self._downscaled(conditions[n], factor) for n in names]

    def _downscaled(self, video: torch.Tensor, factor: int) -> torch.Tensor:
        """A condition video at 1/factor of the grid each side, rounded to whole transformer tokens."""
        cell = self.grid_multiple
        height, width = (max(cell, round(side / factor / cell) * cell) for side in video.shape[-2:])
        frames = video.transpose(1, 2).flatten(0, 1)  # (T, 3, H, W)
        small = F.interpolate(frames.float(), size=(height, width), mode="area").to(video.dtype)
        return small.unflatten(0, (1, -1)).transpose(1, 2)

    def _prefix_latents(self, prefix: np.ndarray | None, clip: GBuffers, grid: Grid) -> torch.Tensor | None:
        if prefix is None or len(prefix) == 0:
            return None
        count = len(prefix)
        if (count - 1) % 4 or count > clip.num_frames:
            raise ValueError(f"prefix of {count} frames for a {clip.num_frames}-frame window: "
                             "it must be 4j+1 frames (the window overlap) and no longer than the window")
        return self.latents.encode(frames_to_model(np.asarray(prefix), grid, self.vae.device, self.vae.dtype)).to(self.device)

    def _suffix_latents(self, suffix: np.ndarray | None, clip: GBuffers, grid: Grid) -> torch.Tensor | None:
        if suffix is None:
            return None
        check_suffix(len(suffix), clip.num_frames)
        video = frames_to_model(np.asarray(suffix), grid, self.vae.device, self.vae.dtype)
        return suffix_latents(self.latents.encode(video)).to(self.device)

    def _denoise(self, window: _Window, config: RealifyConfig, cond_embeds, uncond_embeds, on_step, cancel) -> torch.Tensor:
        sigmas = flow_sigmas(config.steps, DEFAULT_SHIFT if config.shift is None else config.shift, config.strength).tolist()
        start = window.color  # strength < 1 starts from the noised rendered colour
        latents = window.noise if config.strength >= 1.0 else add_noise(start, window.noise, sigmas[0])
        caches: dict[str, ReferenceKVCache] = {}
        num_steps = len(sigmas) - 1
        for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled at step {i} of {num_steps}")
            latents = self._pin_prefix(latents, window, sigma)
            velocity = self._velocity(latents, window, sigma, cond_embeds, uncond_embeds, config, caches,
                                      step=(i, num_steps))
            if on_step is not None:
                preview_due = config.preview_every > 0 and (i + 1) % config.preview_every == 0 and i + 1 < num_steps
                preview = self._preview(predicted_clean(latents, velocity, sigma), window) if preview_due else None
                on_step(i + 1, num_steps, preview)
            latents = euler_step(latents, velocity, sigma, sigma_next)
        return self._pin_prefix(latents, window, 0.0)

    def _pin_prefix(self, latents: torch.Tensor, window: _Window, sigma: float) -> torch.Tensor:
        return pin_ends(latents, window.noise, window.prefix_latents, window.suffix_latents, sigma)

    def _velocity(self, latents, window: _Window, sigma: float, cond_embeds, uncond_embeds, config: RealifyConfig,
                  caches: dict[str, ReferenceKVCache], step: tuple[int, int] = (0, 1)) -> torch.Tensor:
        expert_name = expert_for(sigma, self.boundary_ratio)
        guidance = config.guidance  # A14B: the low-noise expert has its own (diffusers' guidance_scale_2)
        if expert_name == "transformer_2" and config.guidance_2 is not None:
            guidance = config.guidance_2
        model = self.experts[expert_name]
        if self.placement is not None:
            self.placement.use(model.transformer)
        references = [r.to(self.dtype) for r in window.references]  # latents stay float32 for the integration
        cache = None
        if model.attention_mode == "causal-ref":
            if expert_name not in caches:
                caches.clear()  # the schedule only moves from the high- to the low-noise expert
                with self._cache_context(model, "reference", step, sigma):
                    caches[expert_name] = model.encode_references(references, target=window.noise)
            cache = caches[expert_name]
        x, t = latents.to(self.dtype), timestep_of(sigma).to(self.device)

        def run(name: str, x, embeds) -> torch.Tensor:
            with self._cache_context(model, name, step, sigma):
                return model(x, references, t, embeds, cache=cache).float()

        if uncond_embeds is None:
            return run("cond", x, cond_embeds)
        if self.levers.batched_cfg:
            cond, uncond = run("cfg", torch.cat([x, x]), torch.cat([cond_embeds, uncond_embeds])).chunk(2)
        else:
            cond, uncond = run("cond", x, cond_embeds), run("uncond", x, uncond_embeds)
        return guided(cond, uncond, guidance)

    @staticmethod
    def _cache_context(model: ICLoRAWan, name: str, step: tuple[int, int], sigma: float):
        """diffusers' step-cache hooks keep one state per named call and read where the loop is."""
        transformer = model.transformer
        if not transformer.is_cache_enabled:
            return nullcontext()
        index, count = step
        return transformer.cache_context(name, step_index=index, num_inference_steps=count,
                                         timestep=timestep_of(sigma), sigma=sigma)

    def _preview(self, x0: torch.Tensor, window: _Window) -> np.ndarray:
        if window.latent_to_rgb is None:
            return self._to_frames(x0, window)
        video = window.latent_to_rgb(x0, window.noise.shape[2] * 4 - 3, window.grid.model_height, window.grid.model_width)
        return model_to_frames(video, window.grid)[: window.num_frames]

    def _to_frames(self, latents: torch.Tensor, window: _Window) -> np.ndarray:
        return model_to_frames(self.latents.decode(latents), window.grid)[: window.num_frames]
