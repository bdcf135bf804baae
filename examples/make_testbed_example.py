"""Render the README's example clip from the synthetic testbed (held-out seed, not used in training).

    python examples/make_testbed_example.py   # writes testbed_coarse.mp4, testbed_coarse_depth.npz, testbed_real.mp4

The coarse clip and its depth are what the README's main command realifies with the
``tiny-trained`` preset; testbed_real.mp4 is the testbed's "real" render of the same scene,
to compare the output with. All three are exact functions of the seed (numpy only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from c2r.client.media import open_writer
from c2r.models.research.testbed import render_clip

HERE = Path(__file__).resolve().parent
SEED, FRAMES, FPS = 4242, 49, 16


def write_video(path: Path, frames: np.ndarray) -> None:
    writer = open_writer(path, fps=FPS)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.close()


def main() -> None:
    clip = render_clip(SEED, FRAMES)
    write_video(HERE / "testbed_coarse.mp4", clip.coarse)
    write_video(HERE / "testbed_real.mp4", clip.real)
    np.savez_compressed(HERE / "testbed_coarse_depth.npz", depth=clip.depth.astype(np.float16))
    print(f"wrote {FRAMES} frames of testbed seed {SEED} (people enter at frames {list(clip.figure_enter)}) to {HERE}")


if __name__ == "__main__":
    main()
