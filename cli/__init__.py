"""coarse2real: coarse 3D renders to photorealistic video.

The root package holds the version and the `c2r` command. The parts live in subpackages:
``c2r.client`` (light, no torch), ``c2r.daemon`` (the render daemon), ``c2r.models``
(everything torch) and ``c2r.v1`` (the generated wire contract).
"""

__version__ = "0.1.0"
