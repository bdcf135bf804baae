"""How the client reaches a daemon: address parsing, channel options, the auth header.

Kept in one place so the sync and asyncio clients (and the launcher's probes) open the same
kind of channel: message limits that match the daemon's 64 MiB, a bearer token on every call.
"""

from __future__ import annotations

# Matches the daemon's limit (InfoReply.max_message_bytes): one 1280x720 frame with half-float
# colour, float32 depth and half-float normals is about 15 MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_ADDRESS = "127.0.0.1:50051"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# The daemon's preview relay greets each new viewer with this one-part message (viewers subscribe to it):
# the viewer's subscription is then on its way to the engines (well within a millisecond on loopback), and
# every frame published after that reaches it.
PREVIEW_WELCOME = b"c2r-preview-welcome"


def split_address(address: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') -> (host, port), with a message naming the bad value."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {address!r}: write it as HOST:PORT, for example {DEFAULT_ADDRESS}")
    return host, int(port)


def is_local(address: str) -> bool:
    return split_address(address)[0] in LOCAL_HOSTS


def channel_options(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()
