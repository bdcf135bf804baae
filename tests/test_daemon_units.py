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


def test_frame_store_spills_past_its_bound_and_cleans_up(tmp_path):
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(5)]
    store = FrameStore(tmp_path / "spill", memory_bytes=2 * frames[0].nbytes)
    for i, f in enumerate(frames):
        store.put(CheckedFrame(i, {"color": f}, "srgb", "distance"))
    assert store.spilled == 3 and store.in_memory == 2 * frames[0].nbytes
    clip = store.clip(1, 4)
    assert np.array_equal(clip.color, np.stack(frames[1:4])) and clip.depth is None
    store.release_before(3)
    assert sorted(store.frames) == [3, 4] and len(list((tmp_path / "spill").iterdir())) == 2 and store.in_memory == 0
    store.close()
    assert not (tmp_path / "spill").exists()


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
