"""Diffusers-format folders of the released architectures, as a user's download lays them out.

The released transformer and VAE configs (``registry``'s, which are the Hub repos'
``transformer/config.json`` and ``vae/config.json``) at ``LAYERS`` transformer blocks, random
weights; a text encoder of UMT5's class at the real text width (4096) but one narrow layer
(never UMT5-XXL at real size); a word-level fast tokenizer. Written into

* a Hub-like folder ``<root>/hub/<repo name>/`` (what ``--model-path`` points at), and
* a Hugging Face cache ``<root>/hf/hub/models--<org>--<name>/snapshots/<hash>/`` whose files are
  links into ``blobs/``, with ``refs/main`` naming the snapshot (what ``snapshot_download``
  finds offline with ``HF_HUB_CACHE=<root>/hf/hub``).

Built once per test session (``tests/test_real_width.py``'s session fixture).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import torch

from c2r.models.registry import PRESETS, VAE_CONFIGS, place, transformer_class

LAYERS = 2
TEXT_VOCAB = ["<pad>", "</s>", "<unk>", *"a photorealistic video natural lighting real materials film grain cartoon cg "
              "render game plastic blurry low quality street car house tree sky".split()]


def shallow(name: str, layers: int = LAYERS):
    """The preset at ``layers`` blocks. VACE keeps its released layer pattern within them (layer 0 of
    every two for 1.3B, every five for 14B: here layer 0)."""
    preset = PRESETS[name]
    cfg = {**preset.transformer_config, "num_layers": layers}
    if "vace_layers" in cfg:
        cfg["vace_layers"] = [i for i in cfg["vace_layers"] if i < layers]
    return replace(preset, transformer_config=cfg)


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({w: i for i, w in enumerate(TEXT_VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)
    fast.save_pretrained(folder)


def _text_encoder(folder: Path) -> None:
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=len(TEXT_VOCAB), d_model=4096, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0)
    torch.manual_seed(1)
    UMT5EncoderModel(config).to(torch.bfloat16).save_pretrained(folder)


def write_hub_folder(name: str, folder: Path) -> Path:
    """The preset's repo at ``LAYERS`` blocks, random weights, as ``from_pretrained`` reads it."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler

    preset = shallow(name)
    folder.mkdir(parents=True, exist_ok=True)
    for i, expert in enumerate(preset.experts):
        torch.manual_seed(10 + i)
        model = transformer_class(preset)(**preset.transformer_config)
        place(model, "cpu", torch.bfloat16)  # as released: bf16, the float32-kept modules float32
        model.save_pretrained(folder / expert)
        del model
    torch.manual_seed(20)
    AutoencoderKLWan(**VAE_CONFIGS[preset.footprint.vae]).save_pretrained(folder / "vae")
    _text_encoder(folder / "text_encoder")
    _tokenizer(folder / "tokenizer")
    FlowMatchEulerDiscreteScheduler(shift=preset.shift).save_pretrained(folder / "scheduler")
    pipeline = "WanVACEPipeline" if preset.is_vace else "WanPipeline"
    index = {"_class_name": pipeline, "_diffusers_version": "0.35.0",
             **{e: ["diffusers", transformer_class(preset).__name__] for e in preset.experts},
             "vae": ["diffusers", "AutoencoderKLWan"], "text_encoder": ["transformers", "UMT5EncoderModel"],
             "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}
    if preset.boundary_ratio is not None:
        index["boundary_ratio"] = preset.boundary_ratio
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def write_hf_cache(repo_id: str, source: Path, cache: Path) -> Path:
    """``source``'s files as the Hugging Face cache stores a snapshot of ``repo_id`` (links into blobs/)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    revision = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source)
        blob = repo / "blobs" / hashlib.sha256(str(relative).encode()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            os.link(path, blob)  # the bytes once; the snapshot links to them as the cache does
        target = snapshot / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(blob, target.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
