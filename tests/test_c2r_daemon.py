"""`c2r realify --model tiny-c2r` through a real daemon process: 1:1 frames at the input's rate."""

from __future__ import annotations

import av
import numpy as np
import pytest

from c2r.cli.main import main
from c2r.daemon import media
from daemon_process import start_daemon


@pytest.fixture(scope="module")
def c2r_daemon(tmp_path_factory):
    d = start_daemon(tmp_path_factory.mktemp("c2r-daemon"), "--model", "tiny-c2r")
    yield d
    d.stop()


def test_realify_c2r_returns_every_frame_of_a_100_frame_24_fps_clip(c2r_daemon, tmp_path, capsys):
    rng = np.random.default_rng(0)
    writer = media.open_writer(tmp_path / "coarse.mp4", 24)
    for _ in range(100):
        writer.write(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    writer.close()
    out = tmp_path / "real.mp4"
    args = ["realify", str(tmp_path / "coarse.mp4"), "-o", str(out), "--model", "tiny-c2r", "--quality", "preview",
            "--steps", "2", "--window", "33", "--overlap", "9", "--resolution", "native",
            "--address", c2r_daemon.address, "--no-start"]
    assert main(args) == 0, capsys.readouterr().err
    assert "wrote 100 frames" in capsys.readouterr().err
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (float(stream.average_rate), stream.width, stream.height) == (24.0, 48, 32)
        assert sum(1 for _ in container.decode(video=0)) == 100


def test_a_c2r_session_gets_the_released_settings_and_its_guidance_knobs(c2r_daemon):
    from c2r.client.client import connect

    with connect(c2r_daemon.address, start_daemon=False) as client:
        with client.realify(buffers=("color",), model="tiny-c2r", quality="final", control_scale=0.5,
                            input_fps=24.0) as session:
            effective = session.effective
    assert (effective.steps, effective.guidance, effective.guidance_mode, effective.window) == (50, 10.0, "apg", 81)
    assert (effective.control_scale, effective.input_fps) == (0.5, 24.0)
