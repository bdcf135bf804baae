"""What the user chose for a realify run: plain data, saved privately, the same in and out of the engine."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

# Prompt presets the settings panel offers (the prompt field stays free text).
PROMPT_PRESETS = {
    "Custom": "",
    "Overcast street": "a photorealistic city street on an overcast day, natural soft light, film grain",
    "Golden hour": "a photorealistic scene at golden hour, warm low sun, long shadows, shallow haze",
    "Night city": "a photorealistic city at night, wet asphalt, neon and street lights, reflections",
    "Interior daylight": "a photorealistic interior lit by daylight through windows, soft bounce light",
}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass
class RealifySettings:
    """The daemon is never started from the editor: Unreal's ``sys.executable`` is the editor
    itself, not a Python that could run ``c2r serve``; start the daemon yourself."""

    address: str = "127.0.0.1:50051"
    token: str | None = None
    prompt: str = ""
    model: str = ""  # empty: the daemon's default
    quality: str = "preview"
    seed: int | None = None
    window: int | None = None
    model_resolution: str = ""  # "480p", "720p", "native"; empty: from the quality preset
    buffers: tuple[str, ...] = ("color", "depth", "normals")
    output_root: str = os.path.join(os.path.expanduser("~"), "coarse2real-output", "unreal")
    render_size: tuple[int, int] | None = None  # MRQ output (width, height); None keeps the job's default

    def folders(self, name: str) -> tuple[str, str]:
        """(coarse frames folder, realified frames folder) for one sequence or capture."""
        base = os.path.join(self.output_root, name)
        return os.path.join(base, "coarse"), os.path.join(base, "realified")

    def session_options(self) -> dict:
        return {
            "prompt": self.prompt, "model": self.model, "quality": self.quality, "seed": self.seed, "window": self.window,
            "buffers": self.buffers, "resolution": self.model_resolution,
        }  # fmt: skip

    def is_local(self) -> bool:
        return self.address.rsplit(":", 1)[0] in LOCAL_HOSTS

    def problems(self, models: list[str] = (), qualities: list[str] = ()) -> list[str]:
        """What is wrong with these settings, each with what to do; ``models``/``qualities`` from GetInfo."""
        found = []
        if ":" not in self.address:
            found.append(f"daemon address {self.address!r} has no port: write host:port, e.g. 127.0.0.1:50051")
        if not self.is_local() and not self.token:
            found.append(f"daemon {self.address} is not on this machine: set the token it was started with (--token)")
        if models and self.model and self.model not in models:
            found.append(f"model {self.model!r} is not one the daemon serves: choose one of {list(models)} (empty: its default)")
        if qualities and self.quality not in qualities:
            found.append(f"quality {self.quality!r} is not a preset of the daemon: choose one of {list(qualities)}")
        if self.window is not None and (self.window < 5 or (self.window - 1) % 4):
            found.append(f"window {self.window} frames: Wan windows are 4k+1 frames (e.g. 33, 81); leave empty for the preset's")
        return found


def save(settings: RealifySettings, path: str) -> None:
    """Write the settings as JSON readable by this user only (the file holds the daemon token)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(settings), handle, indent=1)
    os.chmod(temporary, 0o600)  # an existing file keeps its mode through O_CREAT
    os.replace(temporary, path)


def load(path: str) -> RealifySettings:
    """The saved settings, or the defaults when nothing was saved; a broken file says which and how to fix it."""
    if not os.path.isfile(path):
        return RealifySettings()
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"Coarse2Real settings file {path} is unreadable ({error}): delete it to start from the defaults") from error
    known = {f.name for f in dataclasses.fields(RealifySettings)}
    values = {k: v for k, v in saved.items() if k in known}  # a field an older plugin saved and this one dropped is ignored
    for name in ("buffers", "render_size"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return RealifySettings(**values)
