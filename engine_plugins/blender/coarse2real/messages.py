"""One line an artist can act on for every way a realify run can fail.

The client's errors already say what went wrong and what to do from a script's point of
view (flags, connect() arguments); this adds where the matching setting is in Blender.
"""

from __future__ import annotations

PREFERENCES = "Edit > Preferences > Add-ons > coarse2real"


def _client_errors():
    try:
        from c2r.client import errors
    except ImportError:
        return None
    return errors


def describe(error: BaseException, address: str = "") -> str:
    """The panel's message for ``error``; ``address`` is the daemon address the run used."""
    errors = _client_errors()
    if errors is None:
        return (
            "the coarse2real client is not installed in this Blender's Python: install the extension zip "
            f"(it bundles the client wheels), not the bare add-on folder ({type(error).__name__}: {error})"
        )
    if isinstance(error, errors.DaemonUnavailable):
        return (
            f"Daemon not reachable at {address}. Start it in a terminal with `c2r serve`, or tick "
            f"'Start a local daemon' in {PREFERENCES}. (client: {error})"
        )
    if isinstance(error, errors.VersionMismatch):
        return f"Version mismatch: {error}. Update the coarse2real extension and the daemon to the same release"
    if isinstance(error, errors.OutOfGpuMemory):
        return f"Out of GPU memory: {error}. Use the Preview preset or a lower render resolution and try again"
    if isinstance(error, errors.Unauthorized):
        return f"Token refused: {error}. Set the daemon's token in {PREFERENCES}"
    if isinstance(error, errors.InvalidInput):
        return f"The daemon refused the request: {error}"
    if isinstance(error, errors.C2RError):
        return f"coarse2real: {error}"
    return f"coarse2real failed ({type(error).__name__}): {error}"
