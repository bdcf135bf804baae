"""Planning figures for the c2r preset (the memory planner's terms for this model).

Resident bf16 weights, from the released architecture: the 14B DiT, UMT5-XXL (5.7B), the
Wan2.1 VAE (float32, about 0.5 GB), DINOv3 ViT-B/16 (86M) and the adapter + bridge (44M): about
41 GB. Activations of one DiT pass over S tokens (S = latent frames x H/16 x W/16: 32,760 at 81
frames, 832x480) plus the control tokens (S x 5120) kept for the whole window. Offload "model"
swaps the text encoder out once the prompts are encoded (the DiT + the small parts stay);
"group" streams the DiT's blocks (about one block resident).
"""

from __future__ import annotations

DIT_PARAMS = 14.0e9
TEXT_ENCODER_PARAMS = 5.7e9
DINO_PARAMS = 86e6
CONTROL_PARAMS = 768 * 2 * 3 + 2 * 768 + 768 * 3072 + 3072 + 3072 * 5120 + 5120 + 2 * 5120 + 5120 * 2560 * 2 + 2560 + 5120
VAE_BYTES = int(0.5e9)
NUM_LAYERS = 40


def weight_bytes(offload: str = "none", bytes_per_param: int = 2) -> int:
    dit = int(DIT_PARAMS * bytes_per_param)
    small = int((DINO_PARAMS + CONTROL_PARAMS) * bytes_per_param) + VAE_BYTES
    if offload == "group":
        return dit // NUM_LAYERS + small
    if offload == "model":
        return dit + small
    return dit + int(TEXT_ENCODER_PARAMS * bytes_per_param) + small


def activation_bytes(tokens: int, width: int = 5120, ffn: int = 13824, bytes_per_value: int = 2) -> int:
    """One pass (the passes of a step run one after another) + the window's control tokens."""
    per_token = width * 10 * bytes_per_value + ffn * bytes_per_value + 6 * width * 4 * 2
    return int(tokens * per_token + tokens * width * bytes_per_value)


def vae_decode_bytes(height: int, width: int) -> int:
    return height * width * 96 * 4 * 4 * 6  # a few 96-channel maps of 4 frames, float32
