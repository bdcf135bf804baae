"""Frame packing and event decoding: the parts of the client the engine plugins reuse."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from c2r.client import InvalidInput, pack_frame, pack_plane, unpack_plane
from c2r.client.config import session_config
from c2r.client.frames import FramePlanes
from c2r.client.events import EventDecoder, Finished, Progress, Result
from c2r.v1 import coarse2real_pb2 as pb


def test_importing_the_client_does_not_import_torch():
    code = "import sys, c2r.client, c2r.client.aio, c2r.client.cli_realify; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32])
def test_planes_are_little_endian_c_order_and_round_trip(dtype):
    array = np.arange(2 * 3 * 3).reshape(2, 3, 3).astype(dtype)
    plane = pack_plane(array[:, ::-1])  # a non-contiguous view is packed in C order
    assert list(plane.shape) == [2, 3, 3] and len(plane.data) == array.nbytes
    np.testing.assert_array_equal(unpack_plane(plane), array[:, ::-1])
    big_endian = array.astype(np.dtype(dtype).newbyteorder(">"))
    assert pack_plane(big_endian).data == pack_plane(array).data


def test_float64_depth_travels_as_float32():
    plane = pack_plane(np.ones((2, 2)))
    assert plane.dtype == pb.FLOAT32 and unpack_plane(plane).dtype == np.float32


def test_frame_carries_every_plane_and_its_conventions():
    color = np.zeros((4, 6, 3), np.float16)
    frame = pack_frame(7, FramePlanes(color, depth=np.ones((4, 6), np.float32), normals=np.zeros((4, 6, 3), np.float16),
                                      color_space="linear", depth_kind="inverse"))
    assert (frame.index, frame.color_space, frame.depth_kind) == (7, pb.LINEAR, pb.INVERSE)
    assert [list(p.shape) for p in (frame.color, frame.depth, frame.normals)] == [[4, 6, 3], [4, 6], [4, 6, 3]]
    assert not frame.HasField("edges")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"color": np.zeros((4, 6), np.uint8)}, r"shape \(4, 6\); send \(height, width, 3\)"),
        ({"color": np.zeros((4, 6, 3), np.int32)}, "dtype int32: send uint8, float16 or float32"),
        ({"color": np.zeros((4, 6, 3), np.float32)}, "send uint8 as 'srgb' or float16/float32 as 'linear'"),
        ({"depth": np.zeros((6, 4), np.float32)}, r"depth has shape \(6, 4\) but the colour is 4x6: send shape \(4, 6\)"),
        ({"depth_kind": "z"}, "depth_kind='z'; choose one of"),
    ],
)
def test_bad_frames_are_refused_before_sending_with_what_to_do(kwargs, message):
    args = {"color": np.zeros((4, 6, 3), np.uint8), **kwargs}
    with pytest.raises(InvalidInput, match=message):
        pack_frame(0, FramePlanes(**args))


def test_session_config_leaves_unset_options_to_the_daemon():
    config = session_config(prompt="street", steps=3, buffers=("color", "normals"))
    assert config.HasField("steps") and not config.HasField("seed") and not config.HasField("window")
    assert list(config.buffers) == [pb.COLOR, pb.NORMALS] and config.protocol_major == pb.PROTOCOL_MAJOR
    with pytest.raises(InvalidInput, match="include 'color'"):
        session_config(buffers=("depth",))
    with pytest.raises(InvalidInput, match="steps=-1"):
        session_config(steps=-1)


def _result(index: int, preview: bool = False) -> pb.ServerMessage:
    plane = pack_plane(np.full((2, 2, 3), index, np.uint8))
    return pb.ServerMessage(result=pb.ResultFrame(index=index, color=plane, preview=preview))


def test_decoder_releases_final_results_in_index_order_and_previews_at_once():
    decoder = EventDecoder()
    assert decoder.decode(_result(1)) == []  # held until frame 0 arrives
    preview = decoder.decode(_result(2, preview=True))
    assert [(r.index, r.preview) for r in preview] == [(2, True)]
    released = decoder.decode(_result(0))
    assert [r.index for r in released] == [0, 1] and all(isinstance(r, Result) for r in released)
    assert int(released[1].image[0, 0, 0]) == 1 and decoder.next_index == 2
    step = pb.ServerMessage(progress=pb.Progress(kind=pb.Progress.STEP, window=0, step=2, num_steps=4, eta_seconds=1.5))
    assert decoder.decode(step) == [Progress(kind="step", window=0, step=2, num_steps=4, eta_seconds=1.5)]
    done = pb.ServerMessage(done=pb.Done(frames_received=3, frames_returned=3, seconds=0.5))
    assert decoder.decode(done) == [Finished(3, 3, 0.5)]
