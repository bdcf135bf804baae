"""The installed coarse2real version, read from the package metadata.

``c2r`` is a namespace package (no ``c2r/__init__.py``), so the version lives in the
distribution's metadata: ``coarse2real`` for a pip install of the project, or
``coarse2real_client`` for the light client wheel the Blender extension bundles.
"""

from __future__ import annotations

from importlib import metadata

_DISTRIBUTIONS = ("coarse2real", "coarse2real_client")


def _installed_version() -> str:
    for name in _DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "0+unknown"  # imported from a source tree that was never installed


__version__ = _installed_version()
