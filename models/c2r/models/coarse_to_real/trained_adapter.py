"""A trained C2R-style feature adapter: the released file, plus what inference must rebuild around it.

`c2r train --set conditioning='feature-adapter'` writes a folder holding one file,
``c2r-dino-adapter.safetensors``, in the released key layout and nothing else
(``dino_patch_adapter.*``, ``dino_fusion_bridge.*``: ``checkpoint.load_control`` reads it
strictly, as it reads the released file), and in its safetensors header, under ``c2r``, what
the released model fixes by convention and a trained one must record: the base it was trained
on, the feature encoder (the DINO stand-in's fields, or a DINOv3 folder) and the injection
coefficients (the released schedule over the base's first third of blocks).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .adapter import C2RControl, ControlShapes
from .checkpoint import ADAPTER_FILE, load_control, read_safetensors
from .dino import StandinDino
from .injection import injected_blocks, injection_coefficients

METADATA_KEY = "c2r"
STANDIN = "standin"  # TrainConfig.feature_encoder: the random-weight DINOv3 stand-in (``dino.StandinDino``)


@dataclass(frozen=True)
class AdapterInfo:
    """What inference needs besides the weights (stored in the file's header)."""

    base_model: str
    encoder: dict  # {"standin": StandinDino fields} or {"path": a DINOv3 folder}
    coefficients: tuple[float, ...]


def encoder_spec(feature_encoder: str, patch: int) -> dict:
    """``"standin"``: the stand-in with a ``patch``-pixel patch (the model's token size); else a DINOv3 folder."""
    if feature_encoder == STANDIN:
        return {"standin": asdict(StandinDino(patch_size=patch))}
    return {"path": str(Path(feature_encoder).expanduser().resolve())}


def build_encoder(spec: dict):
    if "standin" in spec:
        return StandinDino(**spec["standin"]).build()
    if "path" in spec:
        from transformers import DINOv3ViTModel

        if not (Path(spec["path"]) / "config.json").is_file():
            raise FileNotFoundError(f"feature encoder folder {spec['path']} has no config.json: give a DINOv3 folder "
                                    f"(transformers' DINOv3ViTModel.save_pretrained layout) or feature_encoder={STANDIN!r}")
        return DINOv3ViTModel.from_pretrained(spec["path"]).eval()
    raise ValueError(f"feature encoder {spec!r}: expected a 'standin' or a 'path' entry")


def model_width(transformer) -> int:
    return transformer.config.num_attention_heads * transformer.config.attention_head_dim


def new_control(feature_dim: int, model_dim: int) -> C2RControl:
    """The control modules at the released proportions, initialised as C2R trains them (C2R.md): each
    temporal tap 1/3 (a mean of three frames), the adapter's last linear and the bridge's fc2 zero, so
    training starts from the plain base (zero control tokens, identity bridge)."""
    control = C2RControl(ControlShapes.for_models(feature_dim, model_dim))
    with torch.no_grad():
        for conv in control.dino_patch_adapter.temporal_downsample.convs:
            conv.weight.fill_(1 / 3)
        for linear in (control.dino_patch_adapter.mlp[2], control.dino_fusion_bridge.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
    return control


def default_coefficients(transformer) -> tuple[float, ...]:
    """The released decay over the first third of ``transformer``'s blocks (``injection.injected_blocks``)."""
    return tuple(injection_coefficients(injected_blocks(len(transformer.blocks))))


def save_adapter(folder: str | os.PathLike, control: C2RControl, info: AdapterInfo, dtype: torch.dtype = torch.float32) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in control.state_dict().items()}
    save_file(state, folder / ADAPTER_FILE, metadata={METADATA_KEY: json.dumps(asdict(info))})
    return folder


def adapter_file(folder: str | os.PathLike) -> Path:
    path = Path(folder) / ADAPTER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {ADAPTER_FILE} in {folder}: pass the adapter/ folder written by "
                                "`c2r train --set conditioning='feature-adapter'`")
    return path


def read_adapter_info(folder: str | os.PathLike) -> AdapterInfo:
    from safetensors import safe_open

    path = adapter_file(folder)
    with safe_open(path, framework="numpy") as f:
        raw = (f.metadata() or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no c2r metadata (the released file has none): its base and feature encoder are "
                         "unknown; use a folder written by `c2r train --set conditioning='feature-adapter'`, or the c2r "
                         "preset for the released file")
    data = json.loads(raw)
    return AdapterInfo(data["base_model"], data["encoder"], tuple(data["coefficients"]))


def load_adapter(folder: str | os.PathLike, transformer) -> dict:
    """A trained adapter folder for ``transformer``: parts "control", "dino" (its feature encoder, rebuilt)
    and "injection_coefficients", as ``C2RPipeline`` reads them; a file of other shapes is refused naming them."""
    info = read_adapter_info(folder)
    dino = build_encoder(info.encoder)
    if len(info.coefficients) > len(transformer.blocks):
        raise ValueError(f"adapter {folder} injects into {len(info.coefficients)} blocks, but this transformer has "
                         f"{len(transformer.blocks)}: it was trained on another base ({info.base_model!r})")
    control = C2RControl(ControlShapes.for_models(dino.config.hidden_size, model_width(transformer)))
    load_control(control, {k: v.float() for k, v in read_safetensors(adapter_file(folder)).items()},
                 f"trained adapter {adapter_file(folder)} (feature width {dino.config.hidden_size}, model width "
                 f"{model_width(transformer)})",
                 f"It was trained for another base or feature encoder (its base: {info.base_model!r}): train one for this "
                 "base with `c2r train --set conditioning='feature-adapter'`, or run it on the base it was trained on.")
    return {"control": control.eval(), "dino": dino, "injection_coefficients": list(info.coefficients)}
