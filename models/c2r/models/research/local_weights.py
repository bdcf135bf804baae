"""Resolve a model name to a folder on this machine without touching the network.

``from_pretrained(name, local_files_only=True)`` in transformers 5 still asks the hub for
optional files (adapter configs) and retries for half a minute when offline, so the research
tools resolve the folder first and load from the path.
"""

from __future__ import annotations

from pathlib import Path


def local_folder(name_or_path: str) -> Path | None:
    """The folder itself, or the model's Hugging Face cache snapshot, or None when absent."""
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, local_files_only=True))
    except Exception:  # huggingface_hub raises several types for "not cached" and for bad names
        return None
