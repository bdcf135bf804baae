"""What a session yields: results, progress, warnings and the closing summary.

``EventDecoder`` turns daemon messages (a ResultBatch into one event per frame) into these events and holds early final frames
back until every lower index has been yielded, so callers always get results in index
order even if the daemon's windows finish out of order. Both the sync and the asyncio
sessions use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb

from .frames import unpack_plane


@dataclass
class Result:
    index: int
    image: np.ndarray = field(repr=False)  # (H, W, 3) uint8 sRGB at the input size
    preview: bool = False  # True: a progressive estimate; the final frame with this index follows


@dataclass
class Progress:
    kind: str  # "queued" | "started" | "step" | "window_done"
    window: int
    step: int = 0
    num_steps: int = 0
    first_frame: int = 0
    end_frame: int = 0
    eta_seconds: float = 0.0
    queue_position: int = 0
    frames_received: int = 0
    frames_returned: int = 0


@dataclass
class Warning:  # noqa: A001 - the contract's name; this module never needs the builtin
    message: str


@dataclass
class Finished:
    frames_received: int
    frames_returned: int
    seconds: float


Event = Result | Progress | Warning | Finished


def progress_from_message(message: pb.Progress) -> Progress:
    return Progress(
        kind=pb.Progress.Kind.Name(message.kind).lower(),
        window=message.window,
        step=message.step,
        num_steps=message.num_steps,
        first_frame=message.first_frame,
        end_frame=message.end_frame,
        eta_seconds=message.eta_seconds,
        queue_position=message.queue_position,
        frames_received=message.frames_received,
        frames_returned=message.frames_returned,
    )


class EventDecoder:
    """Daemon messages in, events out, final results in index order."""

    def __init__(self) -> None:
        self.next_index = 0  # first final frame not yet yielded: where a resumed session starts
        self._held: dict[int, Result] = {}

    def decode(self, message: pb.ServerMessage) -> list[Event]:
        kind = message.WhichOneof("kind")
        if kind == "progress":
            return [progress_from_message(message.progress)]
        if kind == "warning":
            return [Warning(message.warning.message)]
        if kind == "done":
            d = message.done
            return [Finished(d.frames_received, d.frames_returned, d.seconds)]
        if kind == "result":
            return self._results([message.result])
        if kind == "results":  # a ResultBatch (protocol 1.2): a window's finals, or one estimate's previews
            return self._results(message.results.frames)
        return []  # "started" is consumed by the session before decoding begins

    def _results(self, frames) -> list[Event]:
        previews: list[Event] = []
        for r in frames:
            result = Result(r.index, unpack_plane(r.color), r.preview)
            if result.preview:
                previews.append(result)
            else:
                self._held[result.index] = result
        return previews + self._release()

    def _release(self) -> list[Event]:
        ready: list[Event] = []
        while self.next_index in self._held:
            ready.append(self._held.pop(self.next_index))
            self.next_index += 1
        return ready
