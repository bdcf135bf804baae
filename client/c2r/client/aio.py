"""The asyncio client: the same shape as the synchronous one, with awaitables.

    async with await connect() as client:
        async with await client.realify(prompt="...") as session:
            await session.send(0, color, depth)
            await session.end()
            async for event in session.events(): ...

``send`` awaits gRPC flow control (backpressure); a reader task drains the daemon's
replies so sending everything before reading cannot deadlock the stream. Frames leave as the
synchronous session's do (``session.FrameHandoff``): in a shared-memory ring for a loopback
daemon that offers it, else as bytes in the stream.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable, Sequence

import grpc

from c2r.v1 import coarse2real_pb2 as pb

from .client import Connection, job_spec, negotiate
from .config import info_request, plan_request
from .errors import C2RError, Cancelled, DaemonUnavailable, InvalidInput, from_rpc_error, session_lost
from .events import Event, EventDecoder, Result
from .launcher import ensure_daemon
from .session import RETRY_DELAYS, FrameHandoff, Request, frame_planes
from .transport import DEFAULT_ADDRESS

_CLOSE = object()


class AsyncSession:
    """One realify session on an asyncio event loop. Leaving ``async with`` early cancels it."""

    def __init__(self, call, started: pb.SessionStarted, address: str, max_message_bytes: int):
        self.address = address
        self.session_id = started.session_id
        self.effective = started.effective
        self.warnings = list(started.warnings)
        self.frames_sent = 0
        self._call = call
        self._handoff = FrameHandoff(started.effective.transport == pb.SHARED_MEMORY, max_message_bytes, self.warnings)
        self._ring_status: asyncio.Queue[pb.RingStatus] = asyncio.Queue()
        self._free_slots: asyncio.Queue[int] = asyncio.Queue()
        self._decoder = EventDecoder()
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._ended = False
        self._cancelled = False
        self._failure: C2RError | None = None
        self._reader = asyncio.ensure_future(self._read())

    @property
    def shared_memory(self) -> bool:
        """As Session.shared_memory."""
        return self._handoff.shared_memory

    @classmethod
    async def open(cls, open_call, config: pb.SessionConfig, address: str, max_message_bytes: int) -> "AsyncSession":
        """Start the stream (``open_call()``: a new Realify call); a connection dropped before SessionStarted is
        retried with backoff."""
        delays = iter(RETRY_DELAYS)
        while True:
            call = open_call()
            try:
                await call.write(pb.ClientMessage(config=config))
                first = await call.read()
            except grpc.RpcError as error:
                delay = next(delays, None)
                if error.code() != grpc.StatusCode.UNAVAILABLE or delay is None:
                    raise from_rpc_error(error, address) from None
                await asyncio.sleep(delay)
                continue
            if first is grpc.aio.EOF or first.WhichOneof("kind") != "started":
                call.cancel()
                raise C2RError(f"the daemon at {address} did not start the session (got {first!r})")
            return cls(call, first.started, address, max_message_bytes)

    async def _read(self) -> None:
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                kind = message.WhichOneof("kind")
                if kind == "released":
                    for slot in message.released.slots:
                        self._free_slots.put_nowait(slot)
                elif kind == "ring":
                    self._ring_status.put_nowait(message.ring)
                else:
                    for event in self._decoder.decode(message):
                        self._inbox.put_nowait(event)
        except grpc.RpcError as error:
            self._failure = from_rpc_error(error, self.address)
            if isinstance(self._failure, DaemonUnavailable):
                self._failure = session_lost(self.address, self._decoder.next_index, self.frames_sent)
            self._inbox.put_nowait(self._failure)
        finally:
            self._inbox.put_nowait(_CLOSE)

    async def events(self) -> AsyncIterator[Event]:
        """Results (final ones in index order), progress, warnings, then Finished."""
        while True:
            item = await self._inbox.get()
            if item is _CLOSE:
                return
            if isinstance(item, C2RError):
                if isinstance(item, Cancelled) and self._cancelled:
                    return
                raise item
            yield item

    async def results(self) -> AsyncIterator[Result]:
        async for event in self.events():
            if isinstance(event, Result) and not event.preview:
                yield event

    async def send(self, index: int, *planes, **named) -> None:
        """Frame ``index``: a ``FramePlanes`` or its planes as ``FramePlanes`` takes them; awaits a free
        shared-memory slot, then gRPC flow control (backpressure)."""
        self._check_open()
        checked = frame_planes(index, planes, named)
        if (offer := self._handoff.offer(checked)) is not None:
            await self._write(offer)
            for slot in self._handoff.answered(await self._next(self._ring_status)):
                self._free_slots.put_nowait(slot)
        slot = await self._next(self._free_slots) if self._handoff.in_ring(checked) else None
        self._check_open()
        await self._write(self._handoff.encode(index, checked, slot))
        self.frames_sent += 1

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._cancelled or self._ended or self._reader.done():
            raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames")

    async def _next(self, q: asyncio.Queue):
        """The next item of ``q``, filled by the reader; raises what ended the session meanwhile."""
        getter = asyncio.ensure_future(q.get())
        await asyncio.wait([getter, self._reader], return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        self._check_open()
        raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames")

    async def _write(self, message: Request) -> None:
        try:
            await self._call.write(message)
        except (grpc.RpcError, asyncio.InvalidStateError):
            await asyncio.wait([self._reader], timeout=5.0)
            raise self._failure or DaemonUnavailable(f"the daemon at {self.address} closed the session") from None

    async def end(self) -> None:
        if not self._ended:
            self._ended = True
            await self._write(pb.ClientMessage(end=pb.EndOfStream()))
            await self._call.done_writing()

    async def cancel(self) -> None:
        if self._cancelled or self._reader.done():
            return
        self._cancelled = True
        if self._ended:  # the request stream is already closed: only cancelling the call reaches the daemon
            self._call.cancel()
            return
        try:
            await self._call.write(pb.ClientMessage(cancel=pb.Cancel()))
            await self._call.done_writing()
        except (grpc.RpcError, asyncio.InvalidStateError):
            self._call.cancel()

    async def close(self) -> None:
        if not self._reader.done():
            await self.cancel()
            done, _ = await asyncio.wait([self._reader], timeout=5.0)
            if not done:
                self._call.cancel()
                await asyncio.wait([self._reader], timeout=5.0)
        self._handoff.close()

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncClient(Connection):
    """An asyncio connection to one daemon (and the daemon, if this client started it)."""

    open_channel = staticmethod(grpc.aio.insecure_channel)

    async def _unary(self, method, request):
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.address) from None

    async def info(self) -> pb.InfoReply:
        return await self._unary(self._stub.GetInfo, info_request())

    async def plan(self, width: int, height: int, frames: int = 0, **options) -> pb.PlanReply:
        """As Client.plan."""
        return await self._unary(self._stub.Plan, plan_request(width, height, frames, **options))

    async def handshake(self) -> pb.InfoReply:
        info = await self.info()
        self.max_message_bytes = negotiate(info, self.address)
        self.daemon_info = info
        return info

    async def realify(self, buffers: Sequence[str] = ("color", "depth"), shared_memory: bool | None = None,
                      **options) -> AsyncSession:
        """Open a session; the arguments are Client.realify's (``shared_memory`` None: picked for a loopback daemon)."""
        return await AsyncSession.open(lambda: self._realify(metadata=self._metadata),
                                       self._session_config(buffers, shared_memory, options), self.address,
                                       self.max_message_bytes)

    async def submit_job(self, input: str, output: str, depth: str = "", normals: str = "", format: str = "",
                         fps: float = 0.0, **options) -> pb.Job:
        """As Client.submit_job."""
        return await self._unary(self._stub.SubmitJob, job_spec(input, output, depth, normals, format, fps, **options))

    async def watch_job(self, job_id: str) -> AsyncIterator[pb.JobEvent]:
        """Job events until the job finishes."""
        try:
            async for event in self._stub.WatchJob(pb.JobRef(id=job_id), metadata=self._metadata):
                yield event
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.address) from None

    async def list_jobs(self) -> list[pb.Job]:
        return list((await self._unary(self._stub.ListJobs, pb.ListJobsRequest())).jobs)

    async def cancel_job(self, job_id: str) -> pb.Job:
        return await self._unary(self._stub.CancelJob, pb.JobRef(id=job_id))

    async def close(self) -> None:
        await self._channel.close()
        if self.daemon is not None:
            await asyncio.to_thread(self.daemon.stop)
            self.daemon = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def connect(
    address: str = DEFAULT_ADDRESS,
    token: str | None = None,
    start_daemon: bool = True,
    model: str | None = None,
    timeout: float = 10.0,
    daemon_args: Iterable[str] = (),
    python: str | None = None,
) -> AsyncClient:
    """As ``c2r.client.connect``; starting a daemon runs in a worker thread."""
    daemon = await asyncio.to_thread(
        ensure_daemon, address, token, start_daemon, model, tuple(daemon_args), min(timeout, 2.0), python
    )
    client = AsyncClient(address, token=token, timeout=timeout, daemon=daemon)
    try:
        await client.handshake()
    except C2RError:
        await client.close()
        raise
    return client
