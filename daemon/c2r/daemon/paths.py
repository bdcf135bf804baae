"""Where a job may read and write.

Outputs: ``JobSpec.output`` is relative to the daemon's output root and must stay inside
it after resolving symlinks; absolute paths and ``..`` are refused outright, so a client
can never make the daemon write elsewhere.

Inputs are paths on the daemon's machine: they must exist and be readable regular files
or folders (no devices or pipes). A daemon bound to loopback reads what its user can read,
as any local tool would; a daemon exposed with --host/--token reads only under its output
root, so a remote client cannot use it to read the machine's files. A relative input path
is taken relative to the output root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from .errors import InvalidInput


def representable(path: str, what: str) -> None:
    """A path no file system can hold (a NUL byte) is refused up front, naming it."""
    if "\0" in path:
        raise InvalidInput(f"job {what} {path!r} contains a NUL character, which no file name can hold; remove it")


def safe_output(root: Path, relative: str) -> Path:
    representable(relative, "output")
    if not relative:
        raise InvalidInput("job output is empty; give a path relative to the output root, e.g. 'shots/sh010.mp4'")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or Path(relative).is_absolute() or (pure.parts and ":" in pure.parts[0]):
        raise InvalidInput(f"job output {relative!r} is absolute; give a path relative to the output root {root}")
    if ".." in pure.parts:
        raise InvalidInput(f"job output {relative!r} contains '..'; outputs must stay under the output root {root}")
    target = (root / pure).resolve()
    if not target.is_relative_to(root.resolve()):
        raise InvalidInput(f"job output {relative!r} resolves to {target}, outside the output root {root} (a symlink?); choose another path")
    return target


def readable_input(root: Path, path: str, what: str, confined: bool) -> Path:
    """Resolve a job input; ``confined``: only under ``root`` (daemon exposed beyond loopback)."""
    representable(path, what)
    if not path:
        raise InvalidInput(f"job {what} is empty; give the path of a video, image folder/pattern or EXR sequence")
    resolved = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if confined and not resolved.is_relative_to(root.resolve()):
        raise InvalidInput(f"job {what} {path!r} is outside the output root {root}; this daemon is reachable from the network "
                           "and reads inputs only under its output root: copy the input there")
    is_pattern = any(ch in resolved.name for ch in "%#*?[")  # frames/%04d.png or frames/*.exr names its folder
    probe = resolved.parent if is_pattern else resolved
    if not probe.exists():
        raise InvalidInput(f"job {what} {path!r} does not exist on the daemon's machine ({resolved}); give a path the daemon can read")
    mode = probe.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or not os.access(probe, os.R_OK):
        raise InvalidInput(f"job {what} {path!r} is not a readable file or folder; check its permissions")
    return resolved
