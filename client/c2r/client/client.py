"""The synchronous client: connect, handshake, sessions and jobs."""

from __future__ import annotations

import logging
import warnings
from typing import Iterable, Iterator, Sequence

import grpc

from c2r.v1 import coarse2real_pb2 as pb
from c2r.v1 import coarse2real_pb2_grpc as pb_grpc

from .config import PROTOCOL_MAJOR, PROTOCOL_MINOR, info_request, plan_request, session_config
from .errors import C2RError, InvalidInput, VersionMismatch, from_rpc_error
from .frames import serialized
from .launcher import EmbeddedDaemon, ensure_daemon
from .outgoing import Batching
from .session import Session
from .transport import DEFAULT_ADDRESS, MAX_MESSAGE_BYTES, auth_metadata, channel_options, is_local, split_address

log = logging.getLogger("c2r.client")

REALIFY = f"/{pb.DESCRIPTOR.services_by_name['Coarse2Real'].full_name}/Realify"  # the method's gRPC path
OUTPUT_FORMATS = {"": pb.OUTPUT_FORMAT_UNSPECIFIED, "mp4": pb.MP4, "png": pb.PNG_SEQUENCE, "exr": pb.EXR_SEQUENCE}


def check_versions(info: pb.InfoReply, address: str) -> list[str]:
    """Refuse another protocol major; return warnings (a minor mismatch, the daemon's own)."""
    if info.protocol_major != PROTOCOL_MAJOR:
        raise VersionMismatch(
            f"the daemon at {address} speaks protocol {info.protocol_major}.{info.protocol_minor}, this client "
            f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; install the same coarse2real major version on both sides"
        )
    notes = list(info.warnings)
    if info.protocol_minor != PROTOCOL_MINOR:
        notes.append(
            f"the daemon at {address} speaks protocol {info.protocol_major}.{info.protocol_minor}, this client "
            f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: fields only one side knows are ignored"
        )
    return notes


def job_spec(input: str, output: str, depth: str, normals: str, format: str, fps: float, **options) -> pb.JobSpec:
    if format not in OUTPUT_FORMATS:
        raise InvalidInput(f"format={format!r}: choose one of {sorted(OUTPUT_FORMATS)} ('' = from the output's extension)")
    return pb.JobSpec(
        input=input, depth=depth, normals=normals, output=output, format=OUTPUT_FORMATS[format],
        config=session_config(**options), fps=fps,
    )  # fmt: skip


def negotiate(info: pb.InfoReply, address: str) -> int:
    """Apply the handshake: refuse a major mismatch, warn about the rest; returns the message limit to use."""
    for note in check_versions(info, address):
        log.warning(note)
        warnings.warn(note, stacklevel=4)
    return min(MAX_MESSAGE_BYTES, info.max_message_bytes or MAX_MESSAGE_BYTES)


class Connection:
    """What the synchronous and the asyncio client hold: the daemon's address, the call
    timeout, the auth header, one channel and its stub (and the daemon, if the client started it)."""

    open_channel = staticmethod(grpc.insecure_channel)

    def __init__(self, address: str, token: str | None = None, timeout: float = 10.0, daemon: EmbeddedDaemon | None = None):
        split_address(address)
        self.address = address
        self.timeout = timeout
        self.daemon = daemon
        self.max_message_bytes = MAX_MESSAGE_BYTES
        self._metadata = auth_metadata(token)
        self._channel = self.open_channel(address, options=channel_options())
        self._stub = pb_grpc.Coarse2RealStub(self._channel)
        # Realify taking frames already encoded (frames.encode_frame): gRPC sends their bytes as they are
        self._realify = self._channel.stream_stream(REALIFY, request_serializer=serialized,
                                                    response_deserializer=pb.ServerMessage.FromString)
        self.daemon_info: pb.InfoReply | None = None  # from the handshake

    def same_host(self) -> bool:
        """Shared memory is worth asking for: a loopback daemon that offers it (GetInfo.capabilities.shared_memory)."""
        return is_local(self.address) and self.daemon_info is not None and self.daemon_info.capabilities.shared_memory

    def _session_config(self, buffers: Sequence[str], shared_memory: bool | None, batches: bool,
                        options: dict) -> tuple[pb.SessionConfig, Batching | None]:
        """The SessionConfig to open a session with (transport SHARED_MEMORY when ``shared_memory``, None: same_host()),
        and the batch limits its frames keep to: None unless ``batches`` and the daemon offers them (protocol 1.2)."""
        config = session_config(buffers=buffers, **options)
        if self.same_host() if shared_memory is None else shared_memory:
            config.transport = pb.SHARED_MEMORY
        batching = Batching.offered(self.daemon_info) if batches else None
        config.batches = batching is not None
        return config, batching


class Client(Connection):
    """A connection to one daemon (and the daemon itself, if this client started it)."""

    def _unary(self, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.address) from None

    def info(self) -> pb.InfoReply:
        return self._unary(self._stub.GetInfo, info_request())

    def plan(self, width: int, height: int, frames: int = 0, **options) -> pb.PlanReply:
        """Will a session with these knobs fit on the daemon's GPU, and about how long will it take?

        ``width`` x ``height``: the engine's frame size; ``frames``: the whole sequence (0: one
        window); ``options``: the session knobs, as for ``realify``. The reply's ``summary`` is one
        sentence to show an artist, ``advice`` what to lower when it does not fit.
        """
        return self._unary(self._stub.Plan, plan_request(width, height, frames, **options))

    def handshake(self) -> pb.InfoReply:
        """GetInfo, then check versions; a minor mismatch is logged and warned, not refused."""
        info = self.info()
        self.max_message_bytes = negotiate(info, self.address)
        self.daemon_info = info
        return info

    def realify(self, buffers: Sequence[str] = ("color", "depth"), shared_memory: bool | None = None, batches: bool = True,
                **options) -> Session:
        """Open a session; returns once the daemon has accepted the config (SessionStarted).

        ``options`` are the session knobs, ``config.KNOBS`` (the SessionConfig fields marked
        ``knob`` in coarse2real.proto: prompt, model, quality ("preview" or "final"), seed,
        steps, lora (a name in the daemon's LoRA folder), ...), and client_name (how the
        daemon's logs name this client, e.g. "unreal-5.4 coarse2real 0.1.0").

        ``shared_memory``: hand frames over in shared memory; None (default) picks it for a
        loopback daemon that offers it, False always sends bytes in the stream.

        ``batches``: where the daemon offers them (protocol 1.2), frames that queue up while gRPC
        sends go together in one FrameBatch and results come back several to a message (less
        CPU per frame on both sides, nothing delayed); False: one frame or result per message,
        exactly as protocol 1.1.
        """
        config, batching = self._session_config(buffers, shared_memory, batches, options)
        return Session(lambda requests: self._realify(requests, metadata=self._metadata), config, self.address,
                       self.max_message_bytes, batching)

    # ---------------------------------------------------------------- jobs

    def submit_job(
        self,
        input: str,
        output: str,
        depth: str = "",
        normals: str = "",
        format: str = "",
        fps: float = 0.0,
        **options,
    ) -> pb.Job:
        """Export files the daemon can read; ``output`` is relative to its output root.

        ``options`` are Client.realify's keyword arguments (prompt, model, quality, ...).
        """
        return self._unary(self._stub.SubmitJob, job_spec(input, output, depth, normals, format, fps, **options))

    def list_jobs(self) -> list[pb.Job]:
        return list(self._unary(self._stub.ListJobs, pb.ListJobsRequest()).jobs)

    def cancel_job(self, job_id: str) -> pb.Job:
        return self._unary(self._stub.CancelJob, pb.JobRef(id=job_id))

    def watch_job(self, job_id: str) -> Iterator[pb.JobEvent]:
        """Job events until the job finishes (the daemon ends the stream)."""
        try:
            yield from self._stub.WatchJob(pb.JobRef(id=job_id), metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.address) from None

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the channel, and stop the daemon if this client started it."""
        self._channel.close()
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(
    address: str = DEFAULT_ADDRESS,
    token: str | None = None,
    start_daemon: bool = True,
    model: str | None = None,
    timeout: float = 10.0,
    daemon_args: Iterable[str] = (),
    python: str | None = None,
) -> Client:
    """Connect to the daemon at ``address`` and check protocol versions.

    If nothing answers at a local address and ``start_daemon`` is true, start `c2r serve`
    there with the ``python`` interpreter (default: this one), ``--model model`` and
    ``daemon_args`` (e.g. ``("--state-dir", path)``); the returned client stops it on close().
    """
    daemon = ensure_daemon(address, token, start_daemon, model, daemon_args, min(timeout, 2.0), python)
    client = Client(address, token=token, timeout=timeout, daemon=daemon)
    try:
        client.handshake()
    except C2RError:
        client.close()
        raise
    return client
