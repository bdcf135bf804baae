"""Light client for the coarse2real render daemon: grpcio, protobuf and numpy, no torch.

    from c2r.client import connect
    with connect() as client:                      # starts a local daemon if none runs
        with client.realify(prompt="rainy street", model="tiny") as session:
            for i, (color, depth) in enumerate(frames):
                session.send(i, color, depth)
            session.end()
            for result in session.results():     # in index order
                save(result.index, result.image)

Blender, Unreal and user scripts import this package; the asyncio variant is c2r.client.aio.
"""

from .client import Client, connect
from .errors import C2RError, Cancelled, DaemonUnavailable, InvalidInput, OutOfGpuMemory, Unauthorized, VersionMismatch
from .events import Event, Finished, Progress, Result, Warning
from .frames import FramePlanes, pack_frame, pack_plane, unpack_plane
from .session import Session

__all__ = [
    "C2RError", "Cancelled", "Client", "DaemonUnavailable", "Event", "Finished", "InvalidInput", "OutOfGpuMemory",
    "Progress", "Result", "Session", "Unauthorized", "VersionMismatch", "Warning", "connect",
    "FramePlanes", "pack_frame", "pack_plane", "unpack_plane",
]  # fmt: skip
