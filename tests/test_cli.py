"""The `c2r realify/info/jobs/preview` commands against a real daemon with the tiny model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import av
import numpy as np
import pytest

from c2r.client import media
from c2r.client.config import PROTOCOL_MINOR
from c2r.cli.main import main

FAST = ["--model", "tiny", "--quality", "preview", "--steps", "1", "--window", "5", "--overlap", "1", "--resolution", "native"]


@pytest.fixture
def coarse_clip(tmp_path):
    """9 frames of 32x48 at 12 fps with a depth .npz: an odd rate and count on purpose."""
    rng = np.random.default_rng(0)
    writer = media.open_writer(tmp_path / "coarse.mp4", 12)
    for _ in range(9):
        writer.write(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    writer.close()
    np.savez_compressed(tmp_path / "depth.npz", depth=rng.uniform(1, 20, (9, 32, 48)).astype(np.float16))
    return tmp_path / "coarse.mp4", tmp_path / "depth.npz"


def realify(daemon, *args: str) -> int:
    return main(["realify", *args, *FAST, "--address", daemon.address, "--no-start"] + (["--token", daemon.token] if daemon.token else []))


def test_realify_writes_an_mp4_with_the_inputs_frame_count_and_fps(daemon, coarse_clip, tmp_path, capsys):
    video, depth = coarse_clip
    out = tmp_path / "out" / "real.mp4"
    assert realify(daemon, str(video), "--depth", str(depth), "-o", str(out)) == 0
    assert "wrote 9 frames" in capsys.readouterr().err
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.frames, float(stream.average_rate), stream.width, stream.height) == (9, 12.0, 48, 32)
        assert sum(1 for _ in container.decode(video=0)) == 9


def test_realify_writes_a_png_sequence_into_a_folder(daemon, coarse_clip, tmp_path):
    video, _ = coarse_clip
    out = tmp_path / "frames"
    assert realify(daemon, str(video), "-o", str(out)) == 0
    clip = media.open_clip(out)
    assert (clip.num_frames, clip.height, clip.width) == (9, 32, 48)


def test_realify_refuses_depth_of_another_size_before_connecting(daemon, coarse_clip, tmp_path, capsys):
    video, _ = coarse_clip
    np.save(tmp_path / "bad.npy", np.ones((9, 16, 16), np.float32))
    assert realify(daemon, str(video), "--depth", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "x.mp4")) == 2
    assert "16x16 but the colour is 48x32" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_info_prints_versions_and_models(daemon, capsys):
    assert main(["info", "--address", daemon.address] + (["--token", daemon.token] if daemon.token else [])) == 0
    out = capsys.readouterr().out
    assert f"protocol 1.{PROTOCOL_MINOR}" in out and "tiny" in out and "preview" in out


def test_jobs_submit_watch_and_list(daemon, coarse_clip, capsys):
    video, depth = coarse_clip
    conn = ["--address", daemon.address] + (["--token", daemon.token] if daemon.token else [])
    assert main(["jobs", *conn, "submit", str(video), "cli-job/out.mp4", "--depth", str(depth), "--watch", *FAST]) == 0
    out = capsys.readouterr().out
    job_id = out.split("submitted job ")[1].split(":")[0]
    assert "succeeded 9/9 frames" in out
    with av.open(str(daemon.output_root / "cli-job" / "out.mp4")) as container:
        assert container.streams.video[0].frames == 9
    assert main(["jobs", *conn, "list"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(job_id)]
    assert listed and "succeeded" in listed[0] and "9/9" in listed[0]


def test_preview_saves_the_frames_the_daemon_publishes(daemon, coarse_clip, tmp_path):
    video, _ = coarse_clip
    conn = ["--address", daemon.address] + (["--token", daemon.token] if daemon.token else [])
    viewer = subprocess.Popen(
        [sys.executable, "-m", "c2r.cli.main", "preview", *conn, "--save", str(tmp_path / "seen"), "--count", "3", "--timeout", "60"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert "watching previews" in viewer.stderr.readline()  # printed once the relay holds the subscription
        assert realify(daemon, str(video), "-o", str(tmp_path / "o.mp4")) == 0
        out, _ = viewer.communicate(timeout=60)
    finally:
        viewer.kill()
    assert viewer.returncode == 0 and len(out.strip().splitlines()) == 3
    saved = sorted((tmp_path / "seen").glob("*.png"))
    assert len(saved) == 3 and media.read_image(saved[0]).shape == (32, 48, 3)


def test_ctrl_c_keeps_the_frames_already_returned_in_a_playable_mp4(daemon, coarse_clip, tmp_path):
    video, _ = coarse_clip
    out = tmp_path / "partial.mp4"
    slow = FAST + ["--steps", "10"]  # the last --steps wins: window 2 is still running when we interrupt
    conn = ["--address", daemon.address, "--no-start"] + (["--token", daemon.token] if daemon.token else [])
    proc = subprocess.Popen([sys.executable, "-m", "c2r.cli.main", "realify", str(video), "-o", str(out), *slow, *conn],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        seen = b""
        while b"window 2" not in seen:  # window 1's frames are written before window 2 is reported
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "kept the 5 realified frames" in (seen + rest).decode()
    with av.open(str(out)) as container:
        assert container.streams.video[0].frames == 5 and sum(1 for _ in container.decode(video=0)) == 5


def test_realify_reads_an_exr_sequence_and_writes_half_float_exr(daemon, tmp_path):
    rng = np.random.default_rng(3)
    for i in range(5):  # scene-linear colour and Blender-style depth layers
        media.write_exr(tmp_path / f"beauty_{i:04d}.exr", {c: rng.uniform(0, 2, (32, 32)) for c in "RGB"})
        media.write_exr(tmp_path / f"depth_{i:04d}.exr", {"ViewLayer.Depth.Z": rng.uniform(1, 9, (32, 32))}, half=False)
    out = tmp_path / "real" / "shot_####.exr"
    code = realify(daemon, str(tmp_path / "beauty_%04d.exr"), "--depth", str(tmp_path / "depth_%04d.exr"), "-o", str(out))
    assert code == 0
    written = media.sequence_files(tmp_path / "real" / "shot_%04d.exr")
    assert [p.name for p in written] == [f"shot_{i:04d}.exr" for i in range(5)]
    channels = media.read_exr(written[0])
    assert sorted(channels) == ["B", "G", "R"] and channels["R"].dtype == np.float16 and channels["R"].shape == (32, 32)


def test_jobs_cancel_stops_a_running_job(daemon, coarse_clip, capsys):
    video, _ = coarse_clip
    conn = ["--address", daemon.address] + (["--token", daemon.token] if daemon.token else [])
    assert main(["jobs", *conn, "submit", str(video), "cancelled/out.mp4", *FAST, "--steps", "200"]) == 0
    job_id = capsys.readouterr().out.split("submitted job ")[1].split(":")[0]
    assert main(["jobs", *conn, "cancel", job_id]) == 0
    assert capsys.readouterr().out.strip() in (f"{job_id} cancelled", f"{job_id} running")  # running: stops at the next step
    assert main(["jobs", *conn, "watch", job_id]) == 1  # a cancelled job did not succeed
    assert f"{job_id} cancelled" in capsys.readouterr().out
