"""IC-LoRA training (RealMaster sec. 3.2): LoRA on Wan, flow matching on the noisy tokens only.
With ``conditioning = "feature-adapter"`` the same loop trains a C2R-style feature adapter instead
(``feature_adapter``: DINO features of the coarse colour -> control tokens; base frozen).

Each step takes a cached clip, noises its realistic latents to a sampled sigma, and asks the
IC-LoRA transformer (``c2r.models.iclora.ICLoRAWan``, the very module inference runs) for
the velocity, with the rendered clip's latents as clean reference tokens; the module returns
only the noisy half, so the loss never sees the references. Wan2.2 A14B has two experts:
the high-noise one serves sigma >= the boundary (0.875) at inference, so it trains only on
such sigmas, and the low-noise one on the rest; each gets its own LoRA.

Exact resume: a checkpoint stores the LoRA (or adapter) weights, optimizer and lr-scheduler state, the
RNG states and the step. The data order, the expert choice and the noise of every step are
pure functions of (seed, step), so the step after a resume is the step an uninterrupted run
would have taken, bit for bit on the same hardware.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import shutil
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from c2r.models.backend import ATTENTION_MODES, RealifyConfig
from c2r.models.lora import LoraInfo, add_lora, save_lora
from c2r.models.pipeline import RealifyPipeline
from c2r.models.registry import get_preset, load_components

from .train_data import LatentDataset, build_cache, cache_key, epoch_order, load_pairs

log = logging.getLogger("c2r.train")

CONDITIONINGS = ("ic-lora", "feature-adapter")
# the trainable weights in a checkpoint folder, per conditioning
STATE_FILES = {"ic-lora": "lora_state.pt", "feature-adapter": "adapter_state.pt"}

DEFAULT_CONFIG = Path(__file__).with_name("realmaster.toml")


@dataclass
class TrainConfig:
    """Every training setting; the defaults live in one place, realmaster.toml (see load_config)."""

    model: str
    rank: int
    attention_mode: str
    reference: tuple[str, ...]
    reference_downscales: tuple[int, ...]  # reference clip sizes to train for (1: full; 2: the preview preset's)
    num_frames: int
    resolution: str
    learning_rate: float
    warmup_steps: int
    max_steps: int
    batch_size: int  # clips per optimizer step per process, run one after another (clip sizes may differ)
    gradient_accumulation: int
    max_grad_norm: float
    timestep_shift: float
    mixed_precision: str  # "bf16" | "fp16" | "no"; applies on GPU only
    gradient_checkpointing: bool
    checkpoint_every: int
    keep_checkpoints: int
    validation_every: int
    validation_steps: int
    seed: int
    model_path: str | None = None
    # "ic-lora" (RealMaster) or "feature-adapter" (C2R-style: the settings rank, attention_mode and
    # reference_downscales are the IC-LoRA's and are not used; reference must be ["color"])
    conditioning: str = "ic-lora"
    feature_encoder: str = "standin"  # feature-adapter: "standin" (random-weight DINOv3 stand-in) or a DINOv3 folder

    def validate(self) -> "TrainConfig":
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode={self.attention_mode!r}: choose one of {ATTENTION_MODES}")
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise ValueError(f"num_frames={self.num_frames}: Wan needs 4k+1 frames (e.g. 17, 33, 81)")
        for name in ("rank", "max_steps", "batch_size", "gradient_accumulation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least 1")
        get_preset(self.model)
        RealifyConfig(reference=tuple(self.reference)).validate()
        if not self.reference_downscales:
            raise ValueError("reference_downscales is empty: list the reference sizes to train for, e.g. [1] or [1, 2]")
        for factor in self.reference_downscales:
            RealifyConfig(reference_downscale=factor).validate()
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning={self.conditioning!r}: choose one of {CONDITIONINGS}")
        if self.conditioning == "feature-adapter":
            preset = get_preset(self.model)
            if preset.kind != "t2v" or len(preset.experts) != 1:
                raise ValueError(f"conditioning='feature-adapter' with model={self.model!r}: the adapter trains on one "
                                 "text-to-video transformer (e.g. tiny-trained, wan2.1-t2v-1.3b), not a "
                                 f"{preset.kind} model with experts {list(preset.experts)}")
            if tuple(self.reference) != ("color",):
                raise ValueError(f"reference={list(self.reference)} with conditioning='feature-adapter': the adapter reads "
                                 "the coarse colour only (C2R: DINO features of the colour frames); set reference=['color']")
        return self

    @property
    def is_adapter(self) -> bool:
        return self.conditioning == "feature-adapter"


def load_config(path: Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """The paper defaults (realmaster.toml), then ``path``'s keys, then ``overrides``."""
    values: dict = {}
    for source in (DEFAULT_CONFIG, path):
        if source is not None:
            with open(source, "rb") as f:
                values.update(tomllib.load(f))
    values.update(overrides or {})
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}: valid keys are {sorted(known)}")
    for key in ("reference", "reference_downscales"):
        if key in values:
            values[key] = tuple(values[key])
    return TrainConfig(**values).validate()


def base_components(config: TrainConfig, dtype, device) -> dict:
    """The model to train on: for the feature adapter the base alone (tiny-trained without its IC-LoRA)."""
    from c2r.models import tiny_trained
    from c2r.models.registry import place

    if config.is_adapter and config.model == tiny_trained.PRESET_NAME:
        components = tiny_trained.load(with_lora=False)
        for key in ("transformer", "text_encoder"):
            place(components[key], device, dtype)
        place(components["vae"], device, torch.float32)
        return components
    return load_components(config.model, config.model_path, dtype=dtype, device=device)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Owns the model, data, optimizer and the out folder of one training run."""

    def __init__(self, config: TrainConfig, data_dir: Path, out_dir: Path, components: dict | None = None):
        """components: a registry-style dict to train instead of loading ``config.model`` (the
        learnability benchmark passes a slightly larger tiny transformer this way)."""
        from accelerate import Accelerator

        self.config = config.validate()
        self.data_dir, self.out_dir = Path(data_dir), Path(out_dir)
        self.preset = get_preset(config.model)
        on_gpu = torch.cuda.is_available()
        # accumulation is done by hand (train_step), so accelerate only handles devices, DDP and autocast
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision if on_gpu else "no")
        device = self.accelerator.device
        weights_dtype = torch.bfloat16 if on_gpu and config.mixed_precision == "bf16" else torch.float32
        if components is None:
            components = base_components(config, weights_dtype, device)
        self.expert_names = list(self.preset.experts)
        components["text_encoder"].requires_grad_(False)
        components["vae"].requires_grad_(False)
        self.components = components
        self.boundary = components.get("boundary_ratio")
        if config.is_adapter:
            self._setup_feature_adapter(components, device)
        else:
            self._setup_lora(components, device)
        self.params = [p for module in self.trained.values() for p in module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=1e-2)
        warmup = max(1, config.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: min(1.0, (step + 1) / warmup))
        self.experts = {n: self.accelerator.prepare(model) for n, model in self.experts.items()}
        self.optimizer = self.accelerator.prepare(self.optimizer)
        self.step = 0
        self.dataset: LatentDataset | None = None
        self.pairs = []

    def _setup_lora(self, components: dict, device) -> None:
        config = self.config
        torch.manual_seed(config.seed)  # the LoRA's initial A matrices
        for name in self.expert_names:
            transformer = components[name]
            transformer.requires_grad_(False)
            add_lora(transformer, rank=config.rank)
            for param in transformer.parameters():
                if param.requires_grad:
                    param.data = param.data.float()  # trainable LoRA weights stay float32 under bf16 autocast
            if config.gradient_checkpointing:
                transformer.enable_gradient_checkpointing()
        self.pipeline = RealifyPipeline(components, attention_mode=config.attention_mode,
                                        max_sequence_length=self.preset.max_sequence_length, device=device)
        self.trained = {n: components[n] for n in self.expert_names}  # checkpoint name -> module with trainable weights
        self.experts = {n: self.pipeline.experts[n] for n in self.expert_names}  # what a step calls

    def _setup_feature_adapter(self, components: dict, device) -> None:
        from . import feature_adapter

        torch.manual_seed(self.config.seed)  # the adapter's initial weights
        if self.config.gradient_checkpointing:
            components["transformer"].enable_gradient_checkpointing()
        self.pipeline, control, self.encoder_spec = feature_adapter.setup(
            components, self.config.feature_encoder, self.preset.max_sequence_length, device)
        self.trained = {"control": control}
        self.experts = {"transformer": feature_adapter.ControlledWan(self.pipeline, control)}

    # --- data ----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        config = self.config
        self.pairs = load_pairs(self.data_dir, config.num_frames, tuple(config.reference))
        features = f"{config.conditioning}:{self.encoder_spec}" if config.is_adapter else None
        key = cache_key(config.model, config.resolution, config.num_frames, config.reference, config.reference_downscales,
                        features)
        cache_dir = self.out_dir / "cache" / key
        if self.accelerator.is_main_process:
            build_cache(self.pairs, self.pipeline, cache_dir, config.resolution, () if config.is_adapter else config.reference,
                        config.reference_downscales, features=self.pipeline.dino if config.is_adapter else None)
        self.accelerator.wait_for_everyone()
        self.dataset = LatentDataset([cache_dir / f"{p.id}.pt" for p in self.pairs])

    def _item_index(self, micro_step: int) -> int:
        """Which clip micro-step ``micro_step`` of this process trains on (epochs of seeded shuffles)."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        n = len(self.dataset)
        global_index = micro_step * world + rank
        epoch, position = divmod(global_index, n)
        return epoch_order(n, self.config.seed, epoch)[position]

    # --- the step ----------------------------------------------------------------------------
    def _sample_sigma(self, micro_step: int) -> tuple[str, float, int]:
        """(expert, sigma, reference downscale): shifted-uniform sigma; the expert and the reference
        size are drawn from a generator shared by every process (so all ranks run the same expert
        on same-shaped tokens), the sigma within the expert's range per rank."""
        shared = torch.Generator().manual_seed(self.config.seed * 7919 + micro_step)
        factors = self.config.reference_downscales
        factor = factors[int(torch.randint(len(factors), (), generator=shared))]
        own = torch.Generator().manual_seed(self.config.seed * 7919 + micro_step + 1_000_003 * (1 + self.accelerator.process_index))
        shift = self.config.timestep_shift

        def sigma_of(u: float) -> float:
            return shift * u / (1 + (shift - 1) * u)

        u = torch.rand((), generator=shared).item()
        if self.boundary is None:
            return self.expert_names[0], sigma_of(u), factor
        u_boundary = self.boundary / (shift - (shift - 1) * self.boundary)  # sigma_of(u_boundary) == boundary
        high = u >= u_boundary
        low_end, high_end = (u_boundary, 1.0) if high else (0.0, u_boundary)
        u_own = low_end + (high_end - low_end) * torch.rand((), generator=own).item()
        return ("transformer" if high else "transformer_2"), sigma_of(u_own), factor

    def loss_for(self, micro_step: int) -> tuple[torch.Tensor, str, float, int]:
        """Flow-matching loss of one micro-step: MSE between predicted and true velocity (noisy tokens)."""
        expert, sigma, factor = self._sample_sigma(micro_step)
        item, prompt = self.dataset.load(self._item_index(micro_step))
        target = item["target"]
        device = self.accelerator.device
        noise_gen = torch.Generator().manual_seed(self.config.seed * 104_729 + micro_step * 31 + self.accelerator.process_index)
        noise = torch.randn(target.shape, generator=noise_gen)
        x0, noise = target.to(device), noise.to(device)
        noisy = (1 - sigma) * x0 + sigma * noise
        model = self.experts[expert]
        dtype = self.pipeline.dtype
        # the adapter's input: the cached features (float32, as its weights); the IC-LoRA's: reference latents
        condition = (item["features"].to(device) if self.config.is_adapter
                     else [r.to(device, dtype) for r in item["references"][factor]])
        with self.accelerator.autocast():
            velocity = model(noisy.to(dtype), condition, torch.tensor([sigma * 1000.0], device=device), prompt.to(device, dtype))
        loss = torch.nn.functional.mse_loss(velocity.float(), (noise - x0).float())
        return loss, expert, sigma, factor

    def train_step(self) -> dict:
        accum = self.config.gradient_accumulation * self.config.batch_size
        total = 0.0
        for k in range(accum):
            loss, expert, sigma, factor = self.loss_for(self.step * accum + k)
            self.accelerator.backward(loss / accum)
            total += loss.item() / accum
        if self.config.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"step": self.step, "loss": total, "lr": self.scheduler.get_last_lr()[0], "expert": expert, "sigma": sigma,
                "reference_downscale": factor}

    # --- the run -----------------------------------------------------------------------------
    def train(self, stop_after: int | None = None) -> list[dict]:
        """Train to ``max_steps`` (or ``stop_after`` more steps); returns the logged rows."""
        if self.dataset is None:
            self.prepare_data()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        logger = LossLog(self.out_dir, enabled=self.accelerator.is_main_process)
        rows = []
        end = self.config.max_steps if stop_after is None else min(self.config.max_steps, self.step + stop_after)
        from tqdm import tqdm

        bar = tqdm(total=end, initial=self.step, desc="train", unit="step", disable=not self.accelerator.is_main_process)
        while self.step < end:
            row = self.train_step()
            rows.append(row)
            logger.write(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
            if self.config.validation_every and self.step % self.config.validation_every == 0:
                self.validate()
        bar.close()
        logger.close()
        if self.step >= self.config.max_steps:
            self.save_result()
        return rows

    @property
    def result_dir(self) -> Path:
        """Where the trained weights go: lora/ (IC-LoRA) or adapter/ (feature adapter)."""
        return self.out_dir / ("adapter" if self.config.is_adapter else "lora")

    def save_result(self) -> Path:
        return self.save_adapter(self.result_dir) if self.config.is_adapter else self.save_lora(self.result_dir)

    def lora_info(self) -> LoraInfo:
        return LoraInfo(rank=self.config.rank, attention_mode=self.config.attention_mode,
                        reference=tuple(self.config.reference), base_model=self.config.model,
                        reference_downscales=tuple(self.config.reference_downscales))

    def save_lora(self, folder: Path) -> Path:
        """The LoRA in diffusers format with c2r metadata: `create_backend(model, lora=folder)` loads it."""
        if self.accelerator.is_main_process:
            experts = {n: self.accelerator.unwrap_model(self.experts[n]).transformer for n in self.expert_names}
            save_lora(folder, experts, self.lora_info())
        self.accelerator.wait_for_everyone()
        return folder

    def save_adapter(self, folder: Path) -> Path:
        """The feature adapter in the released key layout (c2r-dino-adapter.safetensors) with its encoder and
        injection recorded: `create_backend("tiny-trained-c2r", model_path=folder)` loads it."""
        from . import feature_adapter

        if self.accelerator.is_main_process:
            feature_adapter.save(folder, self.pipeline, self.trained["control"], self.config.model, self.encoder_spec)
        self.accelerator.wait_for_everyone()
        return folder

    # --- checkpoints ----------------------------------------------------------------------------
    def _trainable_state(self) -> dict:
        return {f"{n}.{k}": v.detach().cpu().clone() for n, module in self.trained.items()
                for k, v in module.named_parameters() if v.requires_grad}

    def save_checkpoint(self) -> Path:
        folder = self.out_dir / "checkpoints" / f"step_{self.step:07d}"
        if self.accelerator.is_main_process:
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            torch.save(self._trainable_state(), tmp / STATE_FILES[self.config.conditioning])
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
            torch.save(_rng_state(), tmp / "rng.pt")
            (tmp / "state.json").write_text(json.dumps({"step": self.step, "config": asdict(self.config)}, indent=2))
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
            for old in sorted((self.out_dir / "checkpoints").glob("step_???????"))[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return folder

    def resume(self, checkpoint: str | Path) -> int:
        """Continue from a checkpoint folder, or "latest" in this run's out folder; returns its step."""
        folder = latest_checkpoint(self.out_dir) if str(checkpoint) == "latest" else Path(checkpoint)
        if folder is None or not (folder / "state.json").is_file():
            raise FileNotFoundError(f"no checkpoint at {checkpoint!r} (looked in {self.out_dir / 'checkpoints'}); "
                                    "start without --resume or pass a step_XXXXXXX folder")
        state = json.loads((folder / "state.json").read_text())
        saved = TrainConfig(**{**state["config"], "reference": tuple(state["config"]["reference"])})
        saved.reference_downscales = tuple(saved.reference_downscales)
        settings = ("model", "rank", "attention_mode", "reference", "reference_downscales", "num_frames", "resolution",
                    "conditioning", "feature_encoder")
        changed = [k for k in settings if getattr(saved, k) != getattr(self.config, k)]
        if changed:
            raise ValueError(f"checkpoint {folder} was trained with other {changed}; resume with its settings or start a new run")
        weights = torch.load(folder / STATE_FILES[self.config.conditioning], weights_only=True)
        for n, module in self.trained.items():
            params = dict(module.named_parameters())
            for key, value in weights.items():
                if key.startswith(n + "."):
                    params[key[len(n) + 1 :]].data.copy_(value)
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
        _set_rng_state(torch.load(folder / "rng.pt", weights_only=False))
        self.step = int(state["step"])
        return self.step

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> Path | None:
        """Render the first clip with the current LoRA or adapter; write input | output beside the target."""
        if not self.accelerator.is_main_process or not self.pairs:
            return None
        from .clips import write_clip
        from .evaluate import side_by_side

        pair = self.pairs[0]
        config = RealifyConfig(prompt=pair.prompt, steps=self.config.validation_steps, guidance=1.0,
                               window=pair.buffers.num_frames, overlap=0, resolution=self.config.resolution,
                               reference=tuple(self.config.reference), attention_mode=self.config.attention_mode,
                               reference_downscale=self.config.reference_downscales[0], seed=self.config.seed,
                               guidance_mode="cfg")  # C2R: control and text scale 1 is one pass; the IC-LoRA ignores it
        frames = self.pipeline(pair.buffers, config)
        path = self.out_dir / "validation" / f"step_{self.step:07d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_clip(path, side_by_side(pair.target, frames), pair.fps)


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = sorted((Path(out_dir) / "checkpoints").glob("step_???????"))
    return found[-1] if found else None


class LossLog:
    """loss.csv always; TensorBoard too when it is installed."""

    FIELDS = ("step", "loss", "lr", "expert", "sigma", "reference_downscale")

    def __init__(self, out_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self._file = self._csv = self._tb = None
        if not enabled:
            return
        path = out_dir / "loss.csv"
        new = not path.is_file()
        self._file = path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.FIELDS, extrasaction="ignore")
        if new:
            self._csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:
            log.info("tensorboard not installed: loss goes to loss.csv only")

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self._csv.writerow(row)
        self._file.flush()
        if self._tb is not None:
            self._tb.add_scalar("loss", row["loss"], row["step"])
            self._tb.add_scalar("lr", row["lr"], row["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def run_training(config: TrainConfig, data_dir: Path, out_dir: Path, resume: str | None = None) -> Path:
    trainer = Trainer(config, data_dir, out_dir)
    if resume:
        trainer.resume(resume)
    trainer.train()
    return trainer.result_dir

