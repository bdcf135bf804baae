"""C2R (coarse_to_real): released key names and shapes, the injection schedule, APG, frame rates.

Real-width checks build modules on the meta device (shapes and names only, no memory); the
behaviour checks run the tiny-c2r preset (a 14-block tiny Wan and a 1-layer DINOv3).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest, apply_quality
from c2r.models.backends import create_backend
from c2r.models.coarse_to_real.adapter import C2RControl, ControlShapes
from c2r.models.coarse_to_real.checkpoint import (
    CheckpointMismatch, backbone_naming, backbone_state, load_backbone, load_control,
)
from c2r.models.coarse_to_real.dino import DinoFeatures, tiny_dino_config
from c2r.models.coarse_to_real.frame_rate import model_frame_sources, output_frame_sources
from c2r.models.coarse_to_real.guidance import APG, CFG
from c2r.models.coarse_to_real.injection import BlockAdditionHook, BridgeHook, ControlInjection

# --- the released adapter file, from the facts file (shared/C2R.md) ------------------------------
RELEASED_ADAPTER = {
    "dino_patch_adapter.temporal_downsample.convs.0.weight": (768, 1, 3, 1, 1),
    "dino_patch_adapter.temporal_downsample.convs.1.weight": (768, 1, 3, 1, 1),
    "dino_patch_adapter.ln.weight": (768,),
    "dino_patch_adapter.ln.bias": (768,),
    "dino_patch_adapter.mlp.0.weight": (3072, 768),
    "dino_patch_adapter.mlp.0.bias": (3072,),
    "dino_patch_adapter.mlp.2.weight": (5120, 3072),
    "dino_patch_adapter.mlp.2.bias": (5120,),
    "dino_fusion_bridge.ln.weight": (5120,),
    "dino_fusion_bridge.ln.bias": (5120,),
    "dino_fusion_bridge.fc1.weight": (2560, 5120),
    "dino_fusion_bridge.fc1.bias": (2560,),
    "dino_fusion_bridge.fc2.weight": (5120, 2560),
    "dino_fusion_bridge.fc2.bias": (5120,),
}


def meta_state(shapes: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: torch.empty(s, device="meta") for k, s in shapes.items()}


def real_control() -> C2RControl:
    with torch.device("meta"):
        return C2RControl(ControlShapes.released())


@pytest.mark.parametrize("prefix", ["", "pipe.dit."])
def test_adapter_and_bridge_load_the_released_keys_strictly_at_real_shapes(prefix):
    control = real_control()
    state = meta_state(RELEASED_ADAPTER, prefix)
    load_control(control, state)
    loaded = control.state_dict()
    assert {k: tuple(v.shape) for k, v in loaded.items()} == RELEASED_ADAPTER
    # 81 frames of 30 x 52 DINO patches -> 21 latent frames x 30 x 52 = 32,760 control tokens of width 5120
    tokens = control.dino_patch_adapter(torch.empty(81, 30, 52, 768, device="meta"))
    assert tuple(tokens.shape) == (1, 32760, 5120)
    assert tuple(control.dino_fusion_bridge(tokens).shape) == (1, 32760, 5120)


def test_adapter_file_with_an_extra_or_missing_key_is_refused_naming_it():
    extra = meta_state({**RELEASED_ADAPTER, "dino_patch_adapter.gate": (1,)})
    with pytest.raises(CheckpointMismatch, match=r"1 not used: dino_patch_adapter\.gate"):
        load_control(real_control(), extra)
    missing = meta_state({k: v for k, v in RELEASED_ADAPTER.items() if "fc2.bias" not in k})
    with pytest.raises(CheckpointMismatch, match=r"1 missing: dino_fusion_bridge\.fc2\.bias"):
        load_control(real_control(), missing)
    wrong = meta_state({**RELEASED_ADAPTER, "dino_fusion_bridge.fc1.weight": (2048, 5120)})
    with pytest.raises(CheckpointMismatch, match=r"fc1\.weight \(2048, 5120\) \(expected \(2560, 5120\)\)"):
        load_control(real_control(), wrong)


# --- the DiT backbone in original Wan naming, real width, 2 layers -------------------------------
DIM, FFN, TEXT, FREQ, LAYERS = 5120, 13824, 4096, 256, 2


def original_wan_backbone() -> dict[str, tuple[str, tuple]]:
    """original name -> (diffusers name, shape), written out from the facts file's renaming rules."""
    pairs = {
        "patch_embedding.weight": ("patch_embedding.weight", (DIM, 16, 1, 2, 2)),
        "patch_embedding.bias": ("patch_embedding.bias", (DIM,)),
        "text_embedding.0.weight": ("condition_embedder.text_embedder.linear_1.weight", (DIM, TEXT)),
        "text_embedding.0.bias": ("condition_embedder.text_embedder.linear_1.bias", (DIM,)),
        "text_embedding.2.weight": ("condition_embedder.text_embedder.linear_2.weight", (DIM, DIM)),
        "text_embedding.2.bias": ("condition_embedder.text_embedder.linear_2.bias", (DIM,)),
        "time_embedding.0.weight": ("condition_embedder.time_embedder.linear_1.weight", (DIM, FREQ)),
        "time_embedding.0.bias": ("condition_embedder.time_embedder.linear_1.bias", (DIM,)),
        "time_embedding.2.weight": ("condition_embedder.time_embedder.linear_2.weight", (DIM, DIM)),
        "time_embedding.2.bias": ("condition_embedder.time_embedder.linear_2.bias", (DIM,)),
        "time_projection.1.weight": ("condition_embedder.time_proj.weight", (6 * DIM, DIM)),
        "time_projection.1.bias": ("condition_embedder.time_proj.bias", (6 * DIM,)),
        "head.head.weight": ("proj_out.weight", (16 * 4, DIM)),
        "head.head.bias": ("proj_out.bias", (16 * 4,)),
        "head.modulation": ("scale_shift_table", (1, 2, DIM)),
    }
    for n in range(LAYERS):
        b = f"blocks.{n}."
        for orig, new in (("self_attn", "attn1"), ("cross_attn", "attn2")):
            for p, q in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0")):
                pairs[f"{b}{orig}.{p}.weight"] = (f"{b}{new}.{q}.weight", (DIM, DIM))
                pairs[f"{b}{orig}.{p}.bias"] = (f"{b}{new}.{q}.bias", (DIM,))
            for p in ("norm_q", "norm_k"):
                pairs[f"{b}{orig}.{p}.weight"] = (f"{b}{new}.{p}.weight", (DIM,))
        pairs[f"{b}norm3.weight"] = (f"{b}norm2.weight", (DIM,))
        pairs[f"{b}norm3.bias"] = (f"{b}norm2.bias", (DIM,))
        pairs[f"{b}ffn.0.weight"] = (f"{b}ffn.net.0.proj.weight", (FFN, DIM))
        pairs[f"{b}ffn.0.bias"] = (f"{b}ffn.net.0.proj.bias", (FFN,))
        pairs[f"{b}ffn.2.weight"] = (f"{b}ffn.net.2.weight", (DIM, FFN))
        pairs[f"{b}ffn.2.bias"] = (f"{b}ffn.net.2.bias", (DIM,))
        pairs[f"{b}modulation"] = (f"{b}scale_shift_table", (1, 6, DIM))
    return pairs


def real_width_transformer():
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        return WanTransformer3DModel(num_attention_heads=40, attention_head_dim=128, ffn_dim=FFN, num_layers=LAYERS,
                                     text_dim=TEXT, freq_dim=FREQ)


def test_original_wan_backbone_at_real_width_maps_every_key_onto_diffusers():
    pairs = original_wan_backbone()
    original = {k: torch.empty(shape, device="meta") for k, (_, shape) in pairs.items()}
    assert backbone_naming(original) == "original"
    converted = backbone_state(original)
    assert len(converted) == len(original)  # nothing merged or dropped
    for orig, (new, _) in pairs.items():
        assert converted[new] is original[orig], orig  # every key lands where the facts file says
    transformer = real_width_transformer()
    expected = {k: tuple(v.shape) for k, v in transformer.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    load_backbone(transformer, original)  # strict: every key used, none left over
    assert transformer.scale_shift_table.dtype == torch.float32 and transformer.blocks[0].norm2.weight.dtype == torch.float32


def test_diffusers_named_backbone_is_detected_and_a_wrong_one_refused_naming_the_keys():
    pairs = original_wan_backbone()
    diffusers = {"transformer." + new: torch.empty(shape, device="meta") for new, shape in pairs.values()}
    assert backbone_naming(diffusers) == "diffusers"
    load_backbone(real_width_transformer(), diffusers)
    original = {k: torch.empty(shape, device="meta") for k, (_, shape) in pairs.items()}
    del original["blocks.1.ffn.2.bias"]
    original["blocks.1.img_gate"] = torch.empty(1, device="meta")
    with pytest.raises(CheckpointMismatch, match=r"1 missing: blocks\.1\.ffn\.net\.2\.bias; 1 not used: blocks\.1\.img_gate"):
        load_backbone(real_width_transformer(), original)


# --- injection on the tiny model's own hooks -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backend():
    backend = create_backend("tiny-c2r")
    backend.load("cpu")
    return backend


def expected_coefficients() -> list[float]:
    return [0.3 + 0.7 * (1 - i / 12) for i in range(13)]


def test_injection_coefficients_are_the_hooks_on_the_blocks(tiny_backend):
    transformer = tiny_backend.pipeline.transformer
    found = [[h.coefficient for h in block._forward_pre_hooks.values() if isinstance(h, BlockAdditionHook)]
             for block in transformer.blocks]
    assert found[:13] == [[pytest.approx(a)] for a in expected_coefficients()]
    assert found[0] == [1.0] and found[12] == [pytest.approx(0.3)]
    assert all(not hooks for hooks in found[13:]) and len(transformer.blocks) == 14
    bridges = [h for h in transformer.patch_embedding._forward_hooks.values() if isinstance(h, BridgeHook)]
    assert len(bridges) == 1


def _probe(transformer, injection, tokens, embeds, x, t):
    """Each block's input (after our hooks) and output, and the patch embedding's output, for one pass."""
    seen = {"in": [], "out": []}
    handles = [transformer.patch_embedding.register_forward_hook(lambda m, a, o: seen.setdefault("patch", o))]
    for block in transformer.blocks:
        handles.append(block.register_forward_pre_hook(lambda m, a: seen["in"].append(a[0])))
        handles.append(block.register_forward_hook(lambda m, a, o: seen["out"].append(o)))
    with torch.no_grad(), injection.control(tokens):
        out = transformer(x, t, embeds, return_dict=False)[0]
    for h in handles:
        h.remove()
    return seen, out


def test_the_control_pass_adds_bridge_and_decaying_control_and_the_plain_pass_is_plain_wan():
    from diffusers import WanTransformer3DModel

    from c2r.models.coarse_to_real.adapter import DinoFusionBridge
    from c2r.models.registry import get_preset

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**get_preset("tiny-c2r").transformer_config).eval()
    bridge = DinoFusionBridge(ControlShapes(model_dim=24, bridge_hidden=12)).eval()
    injection = ControlInjection(transformer, bridge)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 2, 4, 6, generator=g)
    t = torch.tensor([500.0])
    embeds = torch.randn(1, 32, 32, generator=g)
    c = torch.randn(1, 2 * 2 * 3, 24, generator=g)
    plain, plain_out = _probe(transformer, injection, None, embeds, x, t)
    ctrl, ctrl_out = _probe(transformer, injection, c, embeds, x, t)
    with torch.no_grad():
        h0 = bridge(plain["patch"].flatten(2).transpose(1, 2) + c)
    torch.testing.assert_close(ctrl["patch"].flatten(2).transpose(1, 2), h0)
    torch.testing.assert_close(ctrl["in"][0], h0 + 1.0 * c)
    for i, a in enumerate(expected_coefficients()[1:], start=1):
        torch.testing.assert_close(ctrl["in"][i], ctrl["out"][i - 1] + a * c)
    torch.testing.assert_close(ctrl["in"][13], ctrl["out"][12])  # no addition past block 12
    assert not torch.allclose(ctrl_out, plain_out)
    injection.remove()  # plain Wan: the same model without any of our hooks
    again, again_out = _probe(transformer, injection, None, embeds, x, t)
    torch.testing.assert_close(plain_out, again_out, rtol=0, atol=0)
    for a, b in zip(plain["in"], again["in"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_sequence_shard_adds_the_matching_slice_of_the_control():
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(num_attention_heads=2, attention_head_dim=12, ffn_dim=48, num_layers=2,
                                        text_dim=32, freq_dim=32, rope_max_seq_len=64).eval()
    injection = ControlInjection(transformer, torch.nn.Identity(), coefficients=[1.0, 0.5])
    c = torch.randn(1, 12, 24)
    hidden = torch.zeros(1, 6, 24)
    hook = [h for h in transformer.blocks[1]._forward_pre_hooks.values() if isinstance(h, BlockAdditionHook)][0]
    with injection.control(c):
        with pytest.raises(ValueError, match="set_sequence_shard"):
            hook(transformer.blocks[1], (hidden,))
        injection.set_sequence_shard(6, 12)
        (added,) = hook(transformer.blocks[1], (hidden,))[:1]
    torch.testing.assert_close(added, 0.5 * c[:, 6:12])


# --- guidance --------------------------------------------------------------------------------------
def reference_apg(steps, control_scale, text_scale, momentum=-0.5, eta=0.0):
    """APG written out in float64 numpy, straight from the facts file."""
    buffers = {"control": None, "text": None}

    def term(name, u, c, w):
        d = c - u
        buffers[name] = d if buffers[name] is None else d + momentum * buffers[name]
        dm = buffers[name]
        unit = c / np.linalg.norm(c)
        par = np.sum(dm * unit) * unit
        return (c - u) + (w - 1) * ((dm - par) + eta * par)

    out = []
    for x_t, sigma, v00, vC0, vCT in steps:
        x00, xC0, xCT = x_t - sigma * v00, x_t - sigma * vC0, x_t - sigma * vCT
        x0 = x00 + term("control", x00, xC0, control_scale) + term("text", xC0, xCT, text_scale)
        out.append((x_t - x0) / max(sigma, 1e-6))
    return out


def random_steps(n=3, shape=(1, 2, 3, 2, 2)):
    rng = np.random.default_rng(7)
    return [(rng.normal(size=shape), s, rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape))
            for s in (0.9, 0.6, 0.3)[:n]]


@pytest.mark.parametrize("control_scale", [2.5, 1.0])
def test_apg_matches_a_hand_computed_reference_over_three_steps(control_scale):
    steps = random_steps()
    expected = reference_apg(steps, control_scale, 10.0)
    apg = APG(control_scale=control_scale, text_scale=10.0)
    assert apg.passes == (("C0", "CT") if control_scale == 1.0 else ("00", "C0", "CT"))
    for (x_t, sigma, v00, vC0, vCT), want in zip(steps, expected):
        v = {"00": v00, "C0": vC0, "CT": vCT}
        got = apg(torch.tensor(x_t), sigma, {k: torch.tensor(v[k]) for k in apg.passes})
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)
    # the momentum matters: without it (a fresh APG each step) step 2 differs
    x_t, sigma, v00, vC0, vCT = steps[1]
    fresh = APG(control_scale=control_scale, text_scale=10.0)
    v = {"00": v00, "C0": vC0, "CT": vCT}
    got = fresh(torch.tensor(x_t), sigma, {k: torch.tensor(v[k]) for k in fresh.passes})
    assert not np.allclose(got.numpy(), expected[1])


def test_cfg_is_the_released_formula_and_runs_only_the_passes_it_weighs():
    x_t, sigma, v00, vC0, vCT = (torch.tensor(a) if not isinstance(a, float) else a for a in random_steps(1)[0])
    cfg = CFG(control_scale=1.5, text_scale=4.0)
    torch.testing.assert_close(cfg(x_t, sigma, {"00": v00, "C0": vC0, "CT": vCT}), v00 + 1.5 * (vC0 - v00) + 4.0 * (vCT - vC0))
    assert CFG(1.0, 1.0).passes == ("CT",) and CFG(1.0, 5.0).passes == ("C0", "CT")


# --- DINOv3 ----------------------------------------------------------------------------------------
def test_dino_features_drop_cls_and_registers_and_keep_the_patch_grid():
    from transformers import DINOv3ViTModel

    torch.manual_seed(0)
    model = DINOv3ViTModel(tiny_dino_config()).eval()
    video = torch.rand(1, 3, 5, 32, 48) * 2 - 1
    features = DinoFeatures(model)(video)
    assert tuple(features.shape) == (5, 2, 3, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        hidden = model(pixel_values=((video[0].transpose(0, 1) + 1) / 2 - mean) / std).last_hidden_state
    assert hidden.shape[1] == 1 + 4 + 6  # CLS, 4 registers, 2 x 3 patches
    torch.testing.assert_close(features, hidden[:, 5:].reshape(5, 2, 3, 16))


def test_dino_runs_once_per_window_and_its_tokens_serve_every_step_and_branch(tiny_backend):
    pipe = tiny_backend.pipeline
    calls = {"dino": [], "dit": 0}
    h1 = pipe.dino.model.register_forward_hook(lambda m, a, k, o: calls["dino"].append(k["pixel_values"].shape[0]),
                                              with_kwargs=True)
    h2 = pipe.transformer.register_forward_hook(lambda m, a, o: calls.__setitem__("dit", calls["dit"] + 1))
    rng = np.random.default_rng(0)
    clip = GBuffers(rng.integers(0, 256, (33, 32, 48, 3), dtype=np.uint8))
    config = replace(apply_quality(RealifyConfig(), "final", "tiny-c2r"), steps=3, control_scale=2.0, window=33,
                     overlap=0, resolution="native", input_fps=24.0)
    try:
        out = tiny_backend.realify_window(WindowRequest(clip, config))
    finally:
        h1.remove()
        h2.remove()
    # 33 frames at 24 fps = 22 frames at 16 fps, padded to 25 (4k+1): one DINO batch of 25
    assert calls["dino"] == [25]
    assert calls["dit"] == 3 * 3  # three passes (control scale != 1) per step
    assert out.shape == (33, 32, 48, 3) and out.dtype == np.uint8


# --- frame rates -----------------------------------------------------------------------------------
def test_frame_rate_round_trip_is_one_to_one_at_the_inputs_rate():
    sources = model_frame_sources(81, 24.0)
    assert len(sources) == 54 and sources[:5] == [0, 2, 3, 5, 6]  # round(k * 1.5), halves rounded up
    back = output_frame_sources(81, 24.0, len(sources))
    assert len(back) == 81 and back[:6] == [0, 1, 1, 2, 3, 3]
    assert all(sources[back[i]] - i in (-1, 0, 1) for i in range(81))  # every output frame is its nearest generated one
    assert model_frame_sources(17, 16.0) == list(range(17)) == model_frame_sources(17, 0.0)
    assert len(model_frame_sources(41, 8.0)) == 81


def test_a_window_longer_than_81_frames_at_16_fps_is_refused_with_the_window_to_use(tiny_backend):
    clip = GBuffers(np.zeros((49, 32, 48, 3), np.uint8))
    config = replace(RealifyConfig(), steps=1, window=49, overlap=0, resolution="native", input_fps=8.0)
    with pytest.raises(ValueError, match="at most 41 frames"):
        tiny_backend.realify_window(WindowRequest(clip, config))


def test_long_clip_at_24_fps_is_realified_in_windows_with_a_prefix(tiny_backend):
    rng = np.random.default_rng(1)
    clip = GBuffers(rng.integers(0, 256, (60, 32, 48, 3), dtype=np.uint8))
    config = replace(apply_quality(RealifyConfig(), "preview", "tiny-c2r"), steps=2, window=33, overlap=9,
                     resolution="native", input_fps=24.0)
    events = []
    out = tiny_backend.realify(clip, config, on_step=events.append)
    assert out.shape == (60, 32, 48, 3)
    assert [e.window for e in events if e.kind == "window_started"] == [0, 1, 2]


# --- presets, registration, refusals ---------------------------------------------------------------
def test_c2r_quality_presets_are_the_released_settings():
    final = apply_quality(RealifyConfig(), "final", "c2r")
    assert (final.steps, final.shift, final.resolution, final.window, final.guidance_mode, final.guidance,
            final.control_scale) == (50, 5.0, "480p", 81, "apg", 10.0, 1.0)
    preview = apply_quality(RealifyConfig(), "preview", "c2r")
    assert preview.steps < final.steps and CFG(preview.control_scale, preview.guidance).passes == ("CT",)
    with pytest.raises(ValueError, match="guidance_mode='pag'"):
        replace(final, guidance_mode="pag").validate()


def test_c2r_takes_no_lora_and_needs_its_weights():
    with pytest.raises(ValueError, match="takes no IC-LoRA"):
        create_backend("c2r", lora="x")


def test_missing_weights_name_the_parts_and_the_pull(tmp_path, monkeypatch):
    from c2r.models.coarse_to_real import weights

    monkeypatch.setattr(weights, "_cached", lambda repo: None)  # an empty Hugging Face cache
    (tmp_path / "c2r").mkdir()
    (tmp_path / "c2r" / "c2r-dino-adapter.safetensors").write_bytes(b"")
    with pytest.raises(weights.C2RWeightsMissing) as err:
        weights.load_real(str(tmp_path), torch.bfloat16)
    message = str(err.value)
    assert "c2r-dit-backbone-14B.safetensors" in message and "c2r-dino-adapter" not in message.split("not found")[0]
    assert "c2r models pull c2r" in message and "CC BY-NC-ND 4.0" in message


def test_pull_explains_a_gated_refusal_without_network(monkeypatch, capsys):
    import huggingface_hub
    from httpx2 import Request, Response
    from huggingface_hub.errors import GatedRepoError

    from c2r.cli.main import main

    def refuse(repo_id, **kw):
        response = Response(403, request=Request("GET", f"https://huggingface.co/api/models/{repo_id}"))
        raise GatedRepoError(f"403 Client Error: access to model {repo_id} is restricted", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    assert main(["models", "pull", "c2r"]) == 1
    err = capsys.readouterr().err
    assert "refused gonsaBRK/coarse2real (GatedRepoError)" in err
    assert "https://huggingface.co/gonsaBRK/coarse2real" in err and "CC BY-NC-ND 4.0" in err and "hf auth login" in err
