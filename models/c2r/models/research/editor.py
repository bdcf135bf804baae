"""The keyframe editor of anchor propagation: diffusers' ``QwenImageEditPipeline``.

Real weights load offline-first from a local diffusers folder or the Hugging Face cache
(``Qwen/Qwen-Image-Edit``). ``build_tiny_image_editor`` makes the same classes at toy size
with random weights and an in-process word-level tokenizer, so datagen runs end to end in
tests without a download.

The processor is ``ImageOnlyQwen2VLProcessor``: transformers 5 refuses to build
``Qwen2VLProcessor`` without its video processor, which needs torchvision; Qwen-Image-Edit
only ever sends one image, so the video half is not needed and torchvision stays optional.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from transformers import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin

DEFAULT_EDITOR = "Qwen/Qwen-Image-Edit"
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
)
_IMAGE_PROCESSOR_KEYS = ("min_pixels", "max_pixels", "size", "patch_size", "merge_size", "temporal_patch_size", "image_mean", "image_std")


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor for text + images (no video processor, so no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def _image_processor(**kwargs):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(**kwargs)


def _image_processor_settings(folder) -> dict:
    """The image processor's settings: the hub's (older) preprocessor_config.json, or the
    processor_config.json that transformers 5 writes with them nested under "image_processor"."""
    legacy = folder / "preprocessor_config.json"
    if legacy.is_file():
        return json.loads(legacy.read_text())
    return json.loads((folder / "processor_config.json").read_text())["image_processor"]


def load_image_editor(name_or_path: str = DEFAULT_EDITOR, device: str = "cpu", dtype: torch.dtype = torch.bfloat16):
    """Qwen-Image-Edit from local files only; a clear error names what to fetch when absent."""
    from diffusers import QwenImageEditPipeline
    from transformers import AutoTokenizer

    from .local_weights import local_folder

    folder = local_folder(name_or_path)
    try:
        if folder is None:
            raise OSError("not in the Hugging Face cache and not a folder")
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        settings = _image_processor_settings(folder / "processor")
        image_processor = _image_processor(**{k: v for k, v in settings.items() if k in _IMAGE_PROCESSOR_KEYS})
        processor = ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer)
        pipe = QwenImageEditPipeline.from_pretrained(folder, processor=processor, tokenizer=tokenizer, torch_dtype=dtype)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(
            f"Qwen-Image-Edit weights {name_or_path!r} are not on this machine ({e}). Fetch them where there is "
            f"internet with `huggingface-cli download {DEFAULT_EDITOR}`, or pass --editor PATH to a local "
            "diffusers folder (or --editor tiny for a random-weight smoke test)."
        ) from None
    return pipe.to(device)


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = (
        "system user assistant describe the key features of input image color shape size texture objects background "
        "then explain how user's text instruction should alter or modify generate a new that meets requirements while "
        "maintaining consistency with original where appropriate make it photorealistic real photo"
    ).split()
    vocab = {w: i for i, w in enumerate([*QWEN_SPECIAL_TOKENS, "[UNK]", *words, *".,()'"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>", eos_token="<|im_end|>")


def build_tiny_image_editor(seed: int = 0):
    """QwenImageEditPipeline of the real classes at toy size with random, seedable weights."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = _tiny_tokenizer()
    # few vision patches: the editor sees its input image at about 16 merged tokens
    processor = ImageOnlyQwen2VLProcessor(
        image_processor=_image_processor(min_pixels=4 * 28 * 28, max_pixels=16 * 28 * 28, patch_size=14, merge_size=2, temporal_patch_size=2),
        tokenizer=tokenizer,
    )
    config = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            vocab_size=len(tokenizer) + 8, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=16, fullatt_block_indexes=[0], window_size=56),
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=16, out_channels=4, num_layers=1, attention_head_dim=16, num_attention_heads=2,
            joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
        ).eval()
        # five levels (16x) rather than Qwen's 8x: the pipeline always encodes its input at about
        # one megapixel, and 16x keeps that at 1024 latent tokens on a CPU
        vae = AutoencoderKLQwenImage(
            base_dim=4, z_dim=4, dim_mult=[1, 1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, False, True, True],
            latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
        ).eval()
    return QwenImageEditPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        processor=processor, transformer=transformer,
    )


def edit_keyframes(editor, frames: np.ndarray, prompt: str, steps: int, guidance: float, negative_prompt: str,
                   seed: int, edit_size: tuple[int, int] | None = None) -> np.ndarray:
    """Edit (K, H, W, 3) uint8 keyframes; returns them edited and resized back to (H, W)."""
    from PIL import Image

    height, width = frames.shape[1:3]
    images = [Image.fromarray(f) for f in frames]
    size = {"height": edit_size[0], "width": edit_size[1]} if edit_size else {}
    out = editor(
        image=images, prompt=[prompt] * len(images), negative_prompt=[negative_prompt] * len(images) if guidance > 1 else None,
        true_cfg_scale=guidance, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), output_type="pil", **size,
    ).images
    return np.stack([np.asarray(img.convert("RGB").resize((width, height), Image.BICUBIC)) for img in out])
