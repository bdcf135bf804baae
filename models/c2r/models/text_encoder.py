"""Prompt -> text embeddings for Wan (UMT5), with a per-prompt cache.

Wan conditions on UMT5-XXL hidden states, trimmed to the prompt's real length and padded
with zeros to a fixed length (512 for the released models). The daemon realifies many
windows with the same prompt, so embeddings are cached per (prompt) string: the text
encoder then runs once per session, not once per window and CFG branch.

The tiny models need a tokenizer without a hub download: ``WordTokenizer`` maps words to
ids by a stable hash. It answers the same call as a Hugging Face tokenizer (so diffusers'
``WanPipeline`` and ``WanVACEPipeline`` accept it too) and is meaningless linguistically,
which is fine for random weights: what matters is that different prompts give different,
reproducible embeddings.
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict

import torch
from transformers import BatchEncoding, UMT5Config, UMT5EncoderModel

PAD_ID = 0
EOS_ID = 1
_FIRST_WORD_ID = 2


class WordTokenizer:
    """Word-level tokenizer by stable hashing (crc32), shaped like a Hugging Face tokenizer call."""

    def __init__(self, vocab_size: int, model_max_length: int = 512):
        if vocab_size <= _FIRST_WORD_ID:
            raise ValueError(f"vocab_size={vocab_size}: a word tokenizer needs more than {_FIRST_WORD_ID} ids")
        self.vocab_size = vocab_size
        self.model_max_length = model_max_length

    def word_ids(self, text: str) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        span = self.vocab_size - _FIRST_WORD_ID
        return [_FIRST_WORD_ID + zlib.crc32(w.encode()) % span for w in words]

    def __call__(
        self,
        text: str | list[str],
        padding: str | bool = "max_length",
        max_length: int | None = None,
        truncation: bool = True,
        add_special_tokens: bool = True,
        return_attention_mask: bool = True,
        return_tensors: str | None = "pt",
    ) -> BatchEncoding:
        texts = [text] if isinstance(text, str) else list(text)
        length = max_length or self.model_max_length
        rows = []
        for t in texts:
            ids = self.word_ids(t) + ([EOS_ID] if add_special_tokens else [])
            rows.append(ids[:length] if truncation else ids)
        width = length if padding == "max_length" else max(len(r) for r in rows)
        input_ids = [r + [PAD_ID] * (width - len(r)) for r in rows]
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        data = {"input_ids": input_ids}
        if return_attention_mask:
            data["attention_mask"] = mask
        return BatchEncoding(data, tensor_type=return_tensors)


def build_tiny_text_encoder(text_dim: int, seed: int = 0) -> tuple[WordTokenizer, UMT5EncoderModel]:
    """A 1-layer UMT5 encoder with random weights and its word tokenizer, built in-process."""
    config = UMT5Config(
        vocab_size=512, d_model=text_dim, d_kv=8, d_ff=2 * text_dim, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = UMT5EncoderModel(config).eval()
    return WordTokenizer(config.vocab_size), encoder


class PromptEncoder:
    """Encodes prompts the way Wan was trained, caching each prompt's embedding."""

    def __init__(self, tokenizer, text_encoder, max_sequence_length: int = 512, cache_size: int = 32, onload=None):
        """onload(module): called before the encoder runs, to bring offloaded weights onto the device."""
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.max_sequence_length = max_sequence_length
        self.onload = onload
        self.cache_size = cache_size  # a long-running daemon sees many prompts: keep the recent ones
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @torch.no_grad()
    def encode(self, prompt: str, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """(1, max_sequence_length, text_dim) embeddings: real tokens, then zeros."""
        if prompt in self._cache:
            self._cache.move_to_end(prompt)
        else:
            self._cache[prompt] = self._encode_uncached(prompt)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._cache[prompt].to(device=device, dtype=dtype)

    def _encode_uncached(self, prompt: str) -> torch.Tensor:
        if self.onload is not None:
            self.onload(self.text_encoder)
        inputs = self.tokenizer(
            [prompt.strip()], padding="max_length", max_length=self.max_sequence_length, truncation=True,
            add_special_tokens=True, return_attention_mask=True, return_tensors="pt",
        )
        device = next(self.text_encoder.parameters()).device
        ids, mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
        hidden = self.text_encoder(ids, mask).last_hidden_state
        length = int(mask.sum())
        hidden[:, length:] = 0
        return hidden.float().cpu()
