"""One line an artist can act on for every way a realify run can fail.

The client's errors are written for scripts (argument names, command-line flags); the panel
says the same thing in terms of Blender's settings, and keeps only the client's data: what
the daemon refused and why, and the end of a daemon's log.
"""

from __future__ import annotations

import re

from .daemon_env import DaemonSetupError

PREFERENCES = "Edit > Preferences > Add-ons > coarse2real"


class DoesNotFit(Exception):
    """The daemon's planner says the run does not fit on its GPU; the message is its summary and advice."""


def _client_errors():
    try:
        from c2r.client import errors
    except ImportError:
        return None
    return errors


def _is_local(address: str) -> bool:
    return address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "[::1]")


def refused_setting(details: str) -> str:
    """The daemon's reason for refusing a setting, with field=value spelled as the panel names it."""
    details = re.sub(r"^session config:\s*", "", details)
    return re.sub(r"\b([a-z_]+)=", lambda m: m.group(1).replace("_", " ").capitalize() + " ", details)


def _unavailable(error: BaseException, connection) -> str:
    text = str(error)
    address = connection.address
    if "ends with:" in text:  # a daemon Blender started, which stopped at once: its log says why
        tail = text.split("ends with:", 1)[1].strip().splitlines()
        return f"The daemon Blender started stopped right away. The end of its log: {' | '.join(tail[-3:])}"
    if "did not report SERVING" in text:
        return f"The daemon Blender started at {address} did not get ready in time; press Realify again, or see Daemon Status in {PREFERENCES}"
    if not _is_local(address):
        return f"No daemon answers at {address}. Start it on that machine, or set Daemon Address in {PREFERENCES}"
    if not connection.start_daemon:
        return f"No daemon is running at {address}. Tick 'Start a local daemon' in {PREFERENCES}, or press Start Daemon there"
    return f"Blender could not reach the daemon at {address}; see Daemon Status in {PREFERENCES}"


def describe(error: BaseException, connection=None) -> str:
    """The panel's message for ``error``; ``connection`` is the run's ConnectSettings."""
    if isinstance(error, DoesNotFit):
        return f"Nothing was rendered: {error}"
    if isinstance(error, DaemonSetupError):
        return str(error)[0].upper() + str(error)[1:]
    errors = _client_errors()
    if errors is None:
        return (
            "The coarse2real client is missing from this Blender: install the extension zip "
            "(Edit > Preferences > Get Extensions > Install from Disk), not the bare add-on folder"
        )
    address = connection.address if connection is not None else "the daemon address"
    if isinstance(error, errors.DaemonUnavailable):
        return _unavailable(error, connection)
    if isinstance(error, errors.VersionMismatch):
        return "This coarse2real extension and the daemon are from different releases: update both to the same release"
    if isinstance(error, errors.OutOfGpuMemory):
        return "The GPU ran out of memory: use the Preview preset, a lower Resolution or a shorter Window, or close other programs that use the GPU"
    if isinstance(error, errors.Unauthorized):
        return f"The daemon at {address} refused the token: set the daemon's token in {PREFERENCES} > Token"
    if isinstance(error, errors.InvalidInput):
        return f"The daemon refused a setting: {refused_setting(str(error))}"
    if isinstance(error, errors.C2RError):
        return f"The daemon reported a problem: {error}"
    return f"Realify stopped: {error}"
