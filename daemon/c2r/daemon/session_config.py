"""SessionConfig (wire) -> RealifyConfig (model layer), with presets, defaults and refusals.

Which wire fields reach the model is read from the contract (``MODEL_KNOBS``: the knobs of
SessionConfig that are RealifyConfig fields), so no field list is spelled here. The same
resolution serves interactive sessions and jobs, so a job and a session with
the same config run the same model with the same settings. The effective config is
sent back in SessionStarted so the client sees every default that was filled in
(including a drawn seed, which makes any run repeatable).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields, replace

from c2r.client.config import KNOBS, is_set
from c2r.models.backend import RealifyConfig, apply_quality, fit_window_to_rate, preview_model_for
from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput, VersionMismatch
from .frame_check import BUFFER_SLOTS
from .settings import LIMITS, DaemonSettings

PROTOCOL_MAJOR = pb.PROTOCOL_MAJOR
PROTOCOL_MINOR = pb.PROTOCOL_MINOR
DEFAULT_QUALITY = "final"
# The session knobs the daemon resolves itself; every other knob is a RealifyConfig field of
# the same name (MODEL_KNOBS), set from the wire, validated by RealifyConfig.validate and echoed.
SESSION_KNOBS = ("model", "quality", "lora")
MODEL_KNOBS = tuple(name for name in KNOBS if name in {f.name for f in fields(RealifyConfig)})


@dataclass
class ResolvedSession:
    model: str
    lora: str  # a resolved path on the daemon's disk, or "" for none
    config: RealifyConfig
    buffers: list[str]  # slots every frame carries, "color" first
    effective: pb.SessionConfig
    warnings: list[str]


def protocol_warnings(major: int, minor: int) -> list[str]:
    """Refuse another protocol major; a minor difference (or an unstated version) is only a warning."""
    if major == 0:
        return [f"the client did not state its protocol version; assuming {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"]
    if major != PROTOCOL_MAJOR:
        raise VersionMismatch(
            f"client speaks protocol {major}.{minor} but this daemon speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; "
            f"install a client (or plugin) for protocol major {PROTOCOL_MAJOR}, or a daemon for major {major}"
        )
    if minor != PROTOCOL_MINOR:
        return [
            f"client protocol {major}.{minor}, daemon {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: fields one side does not know are ignored; "
            "update the older side when convenient"
        ]
    return []


def resolve_lora(name: str, settings: DaemonSettings) -> str:
    """A session names a LoRA; only the daemon's LoRA folder can supply it (never a client-chosen path)."""
    if not name:
        return settings.lora or ""
    if name != name.strip() or any(ch in name for ch in "/\\:") or name in (".", ".."):
        raise InvalidInput(f"lora {name!r}: give the NAME of a LoRA in the daemon's LoRA folder {settings.lora_dir}, "
                           "not a path (the daemon never loads client-chosen paths)")
    available = sorted(p.name for p in settings.lora_dir.iterdir()) if settings.lora_dir.is_dir() else []
    if name not in available:
        raise InvalidInput(f"lora {name!r} is not in the daemon's LoRA folder {settings.lora_dir} (it holds {available or 'nothing'}); "
                           "copy the folder saved by `c2r train` there, or start the daemon with --lora-dir")
    return str(settings.lora_dir / name)


def resolve(cfg: pb.SessionConfig, models: list[str], settings: DaemonSettings) -> ResolvedSession:
    warnings = protocol_warnings(cfg.protocol_major, cfg.protocol_minor)
    model = cfg.model or settings.model
    if model not in models:
        raise InvalidInput(f"unknown model {model!r}; choose one of {sorted(models)} (GetInfo lists them)")
    quality = cfg.quality or DEFAULT_QUALITY
    preview_on_sibling = quality == "preview" and not cfg.model and preview_model_for(model) != model
    if preview_on_sibling:  # the daemon's default (final) model previews on its small sibling, without its LoRA
        model = preview_model_for(model)
    overrides = {name: getattr(cfg, name) for name in MODEL_KNOBS if is_set(cfg, name)}
    for name, limit in (("window", LIMITS.max_window), ("seed", LIMITS.max_seed)):
        if overrides.get(name, 0) > limit:
            raise InvalidInput(f"session config: {name}={overrides[name]} is over this daemon's limit of {limit} "
                               "(GetInfo.limits); use a smaller value")
    overrides.setdefault("seed", secrets.randbelow(2**31))
    try:
        config = replace(apply_quality(RealifyConfig(), quality, model), **overrides)
        if "window" not in overrides:
            config = fit_window_to_rate(config, model)
        config.validate()
    except ValueError as e:
        raise InvalidInput(f"session config: {e}") from None
    buffers = _buffers(cfg)
    lora = "" if preview_on_sibling else resolve_lora(cfg.lora, settings)
    effective = pb.SessionConfig()
    effective.CopyFrom(cfg)
    effective.protocol_major, effective.protocol_minor = PROTOCOL_MAJOR, PROTOCOL_MINOR
    effective.batches = cfg.batches and cfg.protocol_minor >= 2  # a 1.1 client reads one result per message
    effective.model, effective.quality = model, quality
    for name in MODEL_KNOBS:
        setattr(effective, name, getattr(config, name))
    del effective.buffers[:]
    effective.buffers.extend(b for b, slot in BUFFER_SLOTS.items() if slot in buffers)
    return ResolvedSession(model, lora, config, buffers, effective, warnings)


def _buffers(cfg: pb.SessionConfig) -> list[str]:
    unknown = [b for b in cfg.buffers if b not in BUFFER_SLOTS]
    if unknown:
        raise InvalidInput(f"buffers: unknown value(s) {unknown}; use COLOR, DEPTH, NORMALS, EDGES")
    declared = {BUFFER_SLOTS[b] for b in cfg.buffers} or {"color"}
    if "color" not in declared:
        raise InvalidInput("buffers: COLOR is required in every session; add COLOR to SessionConfig.buffers")
    return [slot for slot in BUFFER_SLOTS.values() if slot in declared]
