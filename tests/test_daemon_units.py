"""The daemon's pure parts without a process: scheduling order, frame spilling, output paths."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from c2r.daemon.errors import InvalidInput
from c2r.daemon.frame_check import CheckedFrame
from c2r.daemon.frame_store import FrameStore
from c2r.daemon.paths import safe_output
from c2r.daemon.scheduler import WindowScheduler, WindowTask
from c2r.models.backend import GBuffers, RealifyConfig, WindowRequest
from c2r.models.windows import Window


def window_task(owner: str, interactive: bool, frames: int = 1, size: int = 8) -> WindowTask:
    clip = GBuffers(np.zeros((frames, size, size, 3), np.uint8))
    return WindowTask(owner, interactive, "tiny", "", WindowRequest(clip, RealifyConfig()), on_event=lambda e: None)


def test_scheduler_runs_interactive_first_then_same_shape_then_fifo():
    async def order() -> list[str]:
        scheduler = WindowScheduler()

        def task(owner, interactive, size):
            return window_task(owner, interactive, frames=17, size=size)

        first = task("warm", True, 64)
        assert scheduler.submit(first) == 0
        assert await scheduler.next() is first  # (17, 64, 64) is now the warm shape
        scheduler.finished(first)
        # each position: the windows that will run before it, given the queue so far
        positions = [scheduler.submit(t) for t in (task("job", False, 64), task("s-other", True, 32),
                                                   task("s-same", True, 64), task("s-late", True, 32))]
        ran = []
        while scheduler.queue:
            t = await scheduler.next()
            ran.append(t.owner)
            scheduler.finished(t)
        return positions, ran

    # interactive before batch; the warm shape first; then arrival order (s-other, then s-late, whose shape is now warm)
    positions, ran = asyncio.run(order())
    assert ran == ["s-same", "s-other", "s-late", "job"]
    assert positions == [0, 0, 0, 2]  # job: first alone; s-other and s-same jump ahead of it; s-late behind both


def test_scheduler_drops_a_vanished_owners_windows():
    async def run():
        scheduler = WindowScheduler()
        gone = window_task("gone", True)
        kept = window_task("kept", False)
        scheduler.submit(gone)
        scheduler.submit(kept)
        scheduler.drop_owner("gone")
        assert gone.result.cancelled()
        assert await scheduler.next() is kept

    asyncio.run(run())


def test_frame_store_copies_each_frame_into_its_windows_and_spills_past_its_bound(tmp_path):
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(10)]
    window_bytes = 5 * frames[0].nbytes
    # windows of 5 with overlap 1: [0, 5), [4, 9), [8, 10); memory for one window buffer
    store = FrameStore(tmp_path / "spill", memory_bytes=window_bytes, window=5, overlap=1)
    for i, f in enumerate(frames):
        store.put(CheckedFrame(i, {"color": f}, "srgb", "distance"))
    assert sorted(store.buffers) == [0] and store.in_memory == window_bytes
    assert sorted(store.spilled_frames) == [4, 5, 6, 7, 8, 9]  # windows 1 and 2 were decided "on disk" at their first frame
    first = store.clip(Window(0, 0, 5, 0))
    assert np.array_equal(first.color, np.stack(frames[0:5])) and first.depth is None
    assert first.color.base is not None, "a view of the window buffer, not a stack made now"
    store.release_before(4)
    assert store.in_memory == 0 and not store.buffers
    second = store.clip(Window(1, 4, 9, 5))  # read back from disk into a buffer
    assert np.array_equal(second.color, np.stack(frames[4:9])) and store.in_memory == window_bytes
    store.release_before(8)
    assert sorted(store.spilled_frames) == [8, 9] and len(list((tmp_path / "spill").iterdir())) == 2 and store.in_memory == 0
    store.close()
    assert not (tmp_path / "spill").exists()


def test_frame_store_checks_the_copy_and_keeps_nothing_of_a_refused_frame(tmp_path):
    store = FrameStore(tmp_path / "spill", memory_bytes=2**20, window=5, overlap=0)

    def refuse(index, planes):
        raise InvalidInput(f"frame {index} refused, saw {int(planes['color'][0, 0, 0])}")

    with pytest.raises(InvalidInput, match="frame 0 refused, saw 7"):
        store.put(CheckedFrame(0, {"color": np.full((4, 4, 3), 7, np.uint8)}, "srgb", "distance"), check=refuse)
    assert not store.spilled_frames


def test_safe_output_keeps_everything_under_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    assert safe_output(root, "shots/a.mp4") == root.resolve() / "shots" / "a.mp4"
    for bad, words in (("/etc/x.mp4", "absolute"), ("a/../../x.mp4", "'..'"), ("out/x.mp4", "outside the output root"),
                       ("C:/x.mp4", "absolute"), ("", "empty")):
        with pytest.raises(InvalidInput, match=words):
            safe_output(root, bad)


def test_sessions_choose_loras_by_name_inside_the_lora_folder_only(tmp_path):
    from c2r.daemon.session_config import resolve
    from c2r.daemon.settings import DaemonSettings
    from c2r.v1 import coarse2real_pb2 as pb

    (tmp_path / "loras" / "street-v1").mkdir(parents=True)
    settings = DaemonSettings(state_dir=tmp_path / "state", output_root=tmp_path / "out", lora_dir=tmp_path / "loras").validate()

    def lora_of(name: str) -> str:
        return resolve(pb.SessionConfig(protocol_major=1, model="tiny", lora=name), ["tiny"], settings).lora

    assert lora_of("street-v1") == str((tmp_path / "loras" / "street-v1").resolve())
    assert lora_of("") == ""  # no operator default
    for path in ("/etc", "../state", "a/b", "C:\\loras\\x"):
        with pytest.raises(InvalidInput, match="not a path"):
            lora_of(path)
    with pytest.raises(InvalidInput, match=r"street-v1"):  # the refusal lists what the folder holds
        lora_of("missing")


def test_preview_sessions_run_the_default_model_on_its_small_sibling_without_its_lora(tmp_path):
    from c2r.daemon.session_config import resolve
    from c2r.daemon.settings import DaemonSettings
    from c2r.v1 import coarse2real_pb2 as pb

    lora = tmp_path / "a14b-lora"
    lora.mkdir()
    settings = DaemonSettings(state_dir=tmp_path / "s", output_root=tmp_path / "o", model="tiny-a14b", lora=str(lora)).validate()
    models = ["tiny", "tiny-a14b"]

    preview = resolve(pb.SessionConfig(protocol_major=1, quality="preview"), models, settings)
    assert (preview.model, preview.lora) == ("tiny", "")  # the A14B LoRA does not fit the 1.3B-style sibling
    final = resolve(pb.SessionConfig(protocol_major=1, quality="final"), models, settings)
    assert (final.model, final.lora) == ("tiny-a14b", str(lora.resolve()))
    chosen = resolve(pb.SessionConfig(protocol_major=1, quality="preview", model="tiny-a14b"), models, settings)
    assert chosen.model == "tiny-a14b"  # a model the session names explicitly is kept


def test_finite_checks_agree_with_ieee_754_on_every_float16_and_the_float32_edges():
    """The reductions on integer views against numpy's own isfinite/signbit, one value per frame, every float16."""
    from c2r.daemon.frame_check import FrameChecker, has_non_finite

    checker = FrameChecker(["color", "depth"])
    f32_edges = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan, 3.4e38, -3.4e38, 1e-45, -1e-45],
                         np.float32)
    for values in (np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16), f32_edges):
        with np.errstate(invalid="ignore"):
            for v in values:
                one = np.full((2, 2), v)
                assert has_non_finite(one) == (not np.isfinite(v)), f"{v!r} ({v.dtype})"
                refuse = (not np.isfinite(v)) or (np.signbit(v) and v != 0)  # a lone -inf/NaN depth: nothing finite
                try:
                    checker.check_values(0, {"depth": one})
                except InvalidInput:
                    assert refuse, f"{v!r} ({v.dtype}) as the only depth value was refused"
                else:
                    assert not refuse, f"{v!r} ({v.dtype}) as the only depth value passed"
    mixed = np.array([[2.0, np.nan], [-0.0, np.inf]], np.float16)  # sky, missing and -0 beside real depth: fine
    checker.check_values(0, {"depth": mixed})
    mixed[0, 1] = -0.5
    with pytest.raises(InvalidInput, match="min -0.5"):
        checker.check_values(0, {"depth": mixed})


def test_frames_written_and_split_outside_protobuf_are_plain_client_messages():
    """encode_frame's bytes parse as the Frame pack_frame builds; split_frame_data hands back the very pixel bytes
    and a message protobuf parses to the same fields, and leaves anything unusual to protobuf."""
    from c2r.client.frames import FramePlanes, encode_frame, pack_frame, split_frame_data
    from c2r.daemon.planes import decode_client_message
    from c2r.v1 import coarse2real_pb2 as pb

    rng = np.random.default_rng(1)
    planes = FramePlanes(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), rng.random((64, 96)).astype(np.float32),
                         rng.random((64, 96, 3)).astype(np.float16), rng.random((64, 96)).astype(np.float16))  # > SPLIT_BYTES
    raw = encode_frame(300, planes)
    assert pb.ClientMessage.FromString(raw) == pb.ClientMessage(frame=pack_frame(300, planes))
    received = decode_client_message(raw)
    assert received.size == len(raw) and received.message.frame.index == 300
    for name, array in planes.arrays():
        assert bytes(received.data[0][name]) == array.astype(array.dtype.newbyteorder("<")).tobytes()
        assert getattr(received.message.frame, name).data == b""
        assert list(getattr(received.message.frame, name).shape) == list(array.shape)
    twice = raw + pb.ClientMessage(frame=pb.Frame(color=pb.Plane(data=b"xy"))).SerializeToString()  # protobuf merges
    assert split_frame_data(twice) is None and decode_client_message(twice).message.frame.color.data == b"xy"
    for other in (pb.ClientMessage(config=pb.SessionConfig(prompt="p")), pb.ClientMessage(end=pb.EndOfStream())):
        assert decode_client_message(other.SerializeToString()).message == other
    assert split_frame_data(raw[:-3]) is None  # truncated: protobuf's parser says so (DecodeError)
