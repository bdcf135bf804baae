"""Model presets: tiny models built offline, real ones loaded offline-first with actionable errors."""

import json
import os
import subprocess
import sys

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

from c2r.cli.main import main
from c2r.models.registry import PRESETS, ModelWeightsMissing, build_tiny, get_preset, load_components
from c2r.models.text_encoder import PromptEncoder, WordTokenizer




def weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_presets_cover_the_backbones():
    assert {"wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.1-vace-1.3b", "wan2.1-vace-14b",
            "tiny", "tiny-a14b", "tiny-vace"} <= set(PRESETS)
    a14b = get_preset("wan2.2-t2v-a14b")
    assert a14b.experts == ("transformer", "transformer_2") and a14b.boundary_ratio == 0.875
    assert a14b.repo_id == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    with pytest.raises(ValueError, match="unknown model 'wan3'.*tiny"):
        get_preset("wan3")


@pytest.mark.parametrize("kind, transformer_class", [("t2v", "WanTransformer3DModel"), ("a14b", "WanTransformer3DModel"),
                                                      ("vace", "WanVACETransformer3DModel")])
def test_tiny_models_are_the_real_classes_seedable(kind, transformer_class):
    a, b, other = build_tiny(kind, seed=1), build_tiny(kind, seed=1), build_tiny(kind, seed=2)
    assert type(a["transformer"]).__name__ == transformer_class
    assert type(a["vae"]).__name__ == "AutoencoderKLWan" and type(a["text_encoder"]).__name__ == "UMT5EncoderModel"
    config = a["transformer"].config
    assert (config.num_layers, config.num_attention_heads, config.attention_head_dim) == (2, 2, 12)
    assert a["vae"].config.base_dim == 3 and a["vae"].config.z_dim == 16
    for key in ("transformer", "vae", "text_encoder"):
        assert torch.equal(weights(a[key]), weights(b[key]))
        assert not torch.equal(weights(a[key]), weights(other[key]))
    if kind == "a14b":
        assert a["boundary_ratio"] == 0.875
        assert not torch.equal(weights(a["transformer"]), weights(a["transformer_2"]))


def test_tiny_components_run_in_diffusers_wan_pipeline():
    """The tiny tokenizer answers diffusers' tokenizer call, so stock pipelines accept the dict."""
    pipe = WanPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), **build_tiny("a14b"))
    video = pipe("a red car", height=32, width=32, num_frames=5, num_inference_steps=2, guidance_scale=1.0,
                 max_sequence_length=16, output_type="np").frames
    assert video.shape == (1, 5, 32, 32, 3)


def test_word_tokenizer_and_prompt_cache():
    tokenizer = WordTokenizer(vocab_size=64)
    batch = tokenizer(["A red car.", "a RED car"], padding="max_length", max_length=6, return_tensors="pt")
    assert batch.input_ids.shape == (2, 6)
    assert batch.input_ids[0, :3].tolist() == batch.input_ids[1, :3].tolist()  # case-insensitive words
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0]  # a, red, car, ".", eos, pad
    assert batch.input_ids.max() < 64
    components = build_tiny("t2v")
    prompts = PromptEncoder(components["tokenizer"], components["text_encoder"], max_sequence_length=16)
    red = prompts.encode("a red car", "cpu", torch.float32)
    blue = prompts.encode("a blue car", "cpu", torch.float32)
    assert red.shape == (1, 16, 32)
    assert torch.all(red[:, 4:] == 0) and torch.any(red[:, :4] != 0)  # 3 words + eos, then zero padding
    assert not torch.equal(red, blue)
    assert torch.equal(prompts.encode("a red car", "cpu", torch.float32), red)


def test_missing_weights_folder_names_path_and_fix(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(ModelWeightsMissing) as err:
        load_components("wan2.1-t2v-1.3b", path=missing)
    message = str(err.value)
    assert str(missing) in message and "c2r models pull wan2.1-t2v-1.3b" in message


def test_corrupt_weights_folder_is_reported_with_the_fix(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(ModelWeightsMissing, match=r"missing transformer/config.json.*c2r models pull wan2.1-t2v-1.3b"):
        load_components("wan2.1-t2v-1.3b", path=tmp_path)
    for sub in ("transformer", "vae", "text_encoder"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "config.json").write_text(json.dumps({"_class_name": "x"}))
    with pytest.raises(ModelWeightsMissing, match=r"corrupt or incomplete.*c2r models pull"):
        load_components("wan2.1-t2v-1.3b", path=tmp_path)


def test_models_cli_list_and_offline_pull(tmp_path, capsys):
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "wan2.2-t2v-a14b" in listing and "2x14B" in listing and "built in-process" in listing
    assert main(["models", "pull", "tiny"]) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    proc = subprocess.run([sys.executable, "-m", "c2r.cli.main", "models", "pull", "wan2.1-t2v-1.3b"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "could not download Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in proc.stderr
    assert "c2r models pull wan2.1-t2v-1.3b" in proc.stderr


def save_as_diffusers_folder(components: dict, folder) -> None:
    """Write tiny components the way a hub snapshot is laid out (the tokenizer as a word-level fast tokenizer)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    for key in ("transformer", "transformer_2", "vae", "text_encoder"):
        if key in components:
            components[key].save_pretrained(folder / key)
    words = Tokenizer(WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "red": 3, "car": 4}, unk_token="<unk>"))
    words.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(
        folder / "tokenizer")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))


def test_real_preset_loads_from_a_local_diffusers_folder(tmp_path):
    import numpy as np

    from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
    from c2r.models.backends import create_backend

    tiny = build_tiny("a14b", seed=4)
    save_as_diffusers_folder(tiny, tmp_path)
    loaded = load_components("wan2.2-t2v-a14b", path=tmp_path, dtype=torch.float32)
    assert loaded["boundary_ratio"] == 0.875
    for key in ("transformer", "transformer_2", "vae"):
        assert torch.equal(weights(loaded[key]), weights(tiny[key]))
    backend = create_backend("wan2.2-t2v-a14b", model_path=str(tmp_path))
    backend.load("cpu")
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    out = backend.realify_window(WindowRequest(GBuffers(frames), RealifyConfig(prompt="a red car", steps=2, guidance=2.0,
                                                                 resolution="native")))
    assert out.shape == (5, 32, 32, 3)
