"""One config schema: the session knobs are read from coarse2real.proto, end to end.

A knob's field lists are derived from the SessionConfig descriptor (``c2r.client.config.KNOBS``),
so these tests pin the contract that derivation relies on: every knob goes somewhere, its type
agrees with the model layer's, and a value given as a `c2r realify` option arrives in the
RealifyConfig the engine runs and comes back in the effective config.
"""

from __future__ import annotations

import argparse
import typing

import pytest
from google.protobuf.descriptor import FieldDescriptor

from c2r.client.cli_options import add_realify_options, realify_options
from c2r.client.config import KNOBS, session_config
from c2r.client.errors import InvalidInput
from c2r.daemon.errors import InvalidInput as DaemonInvalidInput
from c2r.daemon.session_config import MODEL_KNOBS, SESSION_KNOBS, resolve
from c2r.daemon.settings import DaemonSettings
from c2r.models.backend import RealifyConfig

PYTHON_TYPES = {
    FieldDescriptor.CPPTYPE_STRING: str, FieldDescriptor.CPPTYPE_FLOAT: float, FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_UINT32: int, FieldDescriptor.CPPTYPE_UINT64: int, FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int, FieldDescriptor.CPPTYPE_BOOL: bool,
}  # fmt: skip


def test_every_knob_reaches_the_model_or_the_daemon():
    """A knob that is neither a RealifyConfig field nor resolved by the daemon would be silently dropped."""
    lost = [name for name in KNOBS if name not in MODEL_KNOBS and name not in SESSION_KNOBS]
    assert not lost, f"SessionConfig knobs {lost} reach nothing: add a RealifyConfig field of the same name"
    assert set(SESSION_KNOBS) <= set(KNOBS) and {"steps", "prompt", "resolution", "seed"} <= set(MODEL_KNOBS)


def test_knob_types_match_the_model_layer():
    hints = typing.get_type_hints(RealifyConfig)
    for name in MODEL_KNOBS:
        wire = PYTHON_TYPES[KNOBS[name].cpp_type]
        assert hints[name] is wire, f"SessionConfig.{name} is {wire.__name__} on the wire but RealifyConfig.{name} is {hints[name]}"


def _settings(tmp_path):
    return DaemonSettings(state_dir=tmp_path / "s", output_root=tmp_path / "o", lora_dir=tmp_path / "l").validate()


def _from_cli(argv: list[str]):
    parser = argparse.ArgumentParser()
    add_realify_options(parser)
    return session_config(**realify_options(parser.parse_args(argv)))


def test_cli_option_reaches_the_engine_config_and_is_echoed(tmp_path):
    cfg = _from_cli(["--model", "tiny", "--quality", "preview", "--prompt", "wet street", "--steps", "3",
                     "--strength", "0.5", "--preview-every", "2", "--resolution", "native", "--window", "9", "--overlap", "1"])
    resolved = resolve(cfg, ["tiny"], _settings(tmp_path))
    c, e = resolved.config, resolved.effective
    assert (c.prompt, c.steps, c.strength, c.preview_every, c.resolution, c.window, c.overlap) == ("wet street", 3, 0.5, 2, "native", 9, 1)
    assert (e.prompt, e.steps, e.strength, e.preview_every, e.resolution, e.window, e.overlap) == ("wet street", 3, 0.5, 2, "native", 9, 1)
    # what was left unset comes from the preset and is reported, a drawn seed included
    assert (c.guidance, e.guidance, e.HasField("seed"), e.seed) == (1.0, 1.0, True, c.seed)


def test_unset_knobs_leave_the_preset(tmp_path):
    resolved = resolve(_from_cli(["--model", "tiny"]), ["tiny"], _settings(tmp_path))
    assert (resolved.config.steps, resolved.config.resolution, resolved.effective.quality) == (30, "720p", "final")


@pytest.mark.parametrize("argv, message", [
    (["--resolution", "4k"], "resolution='4k': choose one of ('480p', '720p', 'native')"),
    (["--quality", "ultra"], "unknown quality preset 'ultra'"),
    (["--steps", "0"], "steps=0: use at least 1"),
])  # fmt: skip
def test_the_model_layer_refuses_bad_values_once(tmp_path, argv, message):
    with pytest.raises(DaemonInvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(_from_cli(["--model", "tiny", *argv]), ["tiny"], _settings(tmp_path))


def test_client_refuses_a_name_that_is_not_a_knob():
    with pytest.raises(InvalidInput, match="stepz=3 is not a session setting; use one of .*'steps'"):
        session_config(stepz=3)
    with pytest.raises(InvalidInput, match="steps=-1 cannot be sent: use a non-negative number"):
        session_config(steps=-1)
