"""Messages between the front end and an engine: pickle protocol 5 with out-of-band buffers.

A window is hundreds of MB of frames. Pickled in-band, every array is copied into one big
bytes object on the front end's event loop; out of band, the arrays' own memory goes to
ZeroMQ as separate frames without a copy, and only a small header is pickled.
"""

from __future__ import annotations

import pickle

import zmq


def pack(message: dict) -> list:
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    return [header, *(b.raw() for b in buffers)]


def unpack(parts: list, writable: bool = False) -> dict:
    """The message from ``recv_multipart`` parts; ``writable`` copies the arrays' memory so it may be changed."""
    raw = [p.buffer if isinstance(p, zmq.Frame) else p for p in parts]
    buffers = [bytearray(b) for b in raw[1:]] if writable else raw[1:]
    return pickle.loads(raw[0], buffers=buffers)
