"""Unreal's units and axes, turned into the wire contract's.

* SceneDepth is the view-space Z (planar depth) in centimetres (Unreal units). The contract's
  DISTANCE kind only needs "larger is farther"; we still send metres so numbers read the same
  as Blender's and Unity's. Sky pixels come out as a huge depth (reversed-Z with an infinite
  far plane), or as the half-float maximum 65504 when the pass was written at 16 bits; both
  become +inf, which the contract reserves for sky and missing samples.
* The plugin's normal material writes view-space normals as ``n * 0.5 + 0.5`` so no value is
  negative after the tonemapper's stage. Unreal's view space is left-handed: +X right, +Y up,
  +Z forward (into the screen). The daemon prefers camera-space normals in the usual OpenGL
  camera frame (+X right, +Y up, +Z toward the viewer), so Z flips.
"""

from __future__ import annotations

import numpy as np

CENTIMETRES_PER_METRE = 100.0
HALF_FLOAT_MAX = 65504.0
# Anything beyond 100 km is the sky in any scene this plugin is for.
SKY_DEPTH_CM = 1.0e7


def scene_depth_to_metres(depth_cm: np.ndarray) -> np.ndarray:
    """(H, W) SceneDepth in cm -> (H, W) float32 metres, sky and NaN as +inf."""
    saturated = HALF_FLOAT_MAX if depth_cm.dtype == np.float16 else SKY_DEPTH_CM
    depth = depth_cm.astype(np.float32)
    sky = ~np.isfinite(depth) | (depth >= min(saturated, SKY_DEPTH_CM))
    metres = depth / CENTIMETRES_PER_METRE
    metres[sky] = np.inf
    return metres


def encoded_view_normals_to_camera(encoded: np.ndarray) -> np.ndarray:
    """(H, W, 3) ``n * 0.5 + 0.5`` in Unreal view space -> (H, W, 3) float16 OpenGL camera space."""
    normals = encoded.astype(np.float32) * 2.0 - 1.0
    normals[..., 2] *= -1.0
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    # Background pixels have no normal (all zero before encoding): keep them zero, not NaN.
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 1e-3)
    return normals.astype(np.float16)
