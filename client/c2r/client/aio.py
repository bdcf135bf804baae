"""The asyncio client: the same shape as the synchronous one, with awaitables.

    async with await connect() as client:
        async with await client.realify(prompt="...") as session:
            await session.send(0, color, depth)
            await session.end()
            async for event in session.events(): ...

``send`` queues the frame (``outgoing.RequestQueue``) and awaits room there: a writer task
writes the queue to the stream as fast as gRPC flow control lets it (backpressure), the
frames that queued up meanwhile joined into one FrameBatch where the daemon reads them
(protocol 1.2); a reader task drains the daemon's replies so sending everything before
reading cannot deadlock the stream. Frames leave as the synchronous session's do
(``session.FrameHandoff``): in a shared-memory ring for a loopback daemon that offers it,
else as bytes in the stream.
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
from .outgoing import Batching, Request, RequestQueue
from .session import RETRY_DELAYS, FrameHandoff, end_of_requests, frame_planes
from .transport import DEFAULT_ADDRESS

_CLOSE = object()


class AsyncOutgoing:
    """The session's RequestQueue on the event loop: ``room`` until it is not full; the writer awaits ``next``."""

    def __init__(self, batching: Batching | None):
        self.queue = RequestQueue(batching)
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()  # wakes every waiter; later ones wait on a fresh event
        self._changed = asyncio.Event()

    async def room(self) -> None:
        while self.queue.full():
            await self._changed.wait()

    def append(self, request) -> None:
        self.queue.append(request)
        self._notify()

    def replace(self, request) -> None:
        """Drop what is queued and queue ``request`` (a cancel, or the end of the stream) whatever the bounds."""
        self.queue.clear()
        self.append(request)

    async def next(self):
        while not self.queue:
            await self._changed.wait()
        message = self.queue.pop()
        self._notify()
        return message


class AsyncSession:
    """One realify session on an asyncio event loop. Leaving ``async with`` early cancels it."""

    def __init__(self, call, started: pb.SessionStarted, address: str, max_message_bytes: int,
                 batching: Batching | None = None):
        self.address = address
        self.session_id = started.session_id
        self.effective = started.effective
        self.warnings = list(started.warnings)
        self.frames_sent = 0
        self.requests_sent = 1  # as Session's: the config went before this session object existed
        self.replies_received = 1
        self._call = call
        self._outgoing = AsyncOutgoing(batching if started.effective.batches else None)
        self._write_failed = False
        self._handoff = FrameHandoff(started.effective.transport == pb.SHARED_MEMORY, max_message_bytes, self.warnings)
        self._ring_status: asyncio.Queue[pb.RingStatus] = asyncio.Queue()
        self._free_slots: asyncio.Queue[int] = asyncio.Queue()
        self._decoder = EventDecoder()
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._ended = False
        self._cancelled = False
        self._failure: C2RError | None = None
        self._reader = asyncio.ensure_future(self._read())
        self._writer = asyncio.ensure_future(self._write())

    @property
    def shared_memory(self) -> bool:
        """As Session.shared_memory."""
        return self._handoff.shared_memory

    @classmethod
    async def open(cls, open_call, config: pb.SessionConfig, address: str, max_message_bytes: int,
                   batching: Batching | None = None) -> "AsyncSession":
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
            return cls(call, first.started, address, max_message_bytes, batching)

    async def _read(self) -> None:
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                self.replies_received += 1
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
            self._outgoing.replace(_CLOSE)  # the writer stops too
            self._inbox.put_nowait(_CLOSE)

    async def _write(self) -> None:
        """The writer task: the queued requests to the stream in order (frames batched), until end or cancel."""
        try:
            while (message := await self._outgoing.next()) is not _CLOSE:
                await self._call.write(message)
                self.requests_sent += 1
                if end_of_requests(message):
                    await self._call.done_writing()
                    return
        except (grpc.RpcError, asyncio.InvalidStateError):
            self._write_failed = True  # the reader says why the stream ended

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
        shared-memory slot, then room in the queue to the stream (backpressure)."""
        self._check_open()
        checked = frame_planes(index, planes, named)
        if (offer := self._handoff.offer(checked)) is not None:
            await self._put(offer)
            for slot in self._handoff.answered(await self._until_ended(self._ring_status.get())):
                self._free_slots.put_nowait(slot)
        slot = await self._until_ended(self._free_slots.get()) if self._handoff.in_ring(checked) else None
        self._check_open()
        await self._put(self._handoff.encode(index, checked, slot))
        self.frames_sent += 1

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._cancelled or self._ended or self._reader.done() or self._writer.done():
            raise InvalidInput(f"session {self.session_id} has ended; start a new session to send more frames")

    async def _until_ended(self, awaitable):
        """What ``awaitable`` gives (the reader fills the queues, the writer empties the outgoing one); raises what
        ended the session meanwhile."""
        waiting = asyncio.ensure_future(awaitable)
        await asyncio.wait([waiting, self._reader, self._writer], return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            return waiting.result()
        waiting.cancel()
        await self._raise_ended()

    async def _raise_ended(self) -> None:
        if self._write_failed:
            await asyncio.wait([self._reader], timeout=5.0)
        self._check_open()
        raise self._failure or DaemonUnavailable(f"the daemon at {self.address} closed the session")

    async def _put(self, request: Request) -> None:
        """Queue ``request`` for the writer once there is room."""
        if self._outgoing.queue.full():
            await self._until_ended(self._outgoing.room())
        self._outgoing.append(request)

    async def end(self) -> None:
        """No more frames: returns once everything queued, the end included, is written."""
        if not self._ended:
            await self._put(pb.ClientMessage(end=pb.EndOfStream()))
            self._ended = True
            await asyncio.wait([self._writer])
            if self._write_failed:
                await self._raise_ended()

    async def cancel(self) -> None:
        if self._cancelled or self._reader.done():
            return
        self._cancelled = True
        if self._ended or self._writer.done():  # the request stream is closed: only cancelling the call reaches the daemon
            self._call.cancel()
            return
        self._outgoing.replace(pb.ClientMessage(cancel=pb.Cancel()))  # queued frames are dropped
        done, _ = await asyncio.wait([self._writer], timeout=5.0)
        if not done or self._write_failed:
            self._call.cancel()

    async def close(self) -> None:
        if not self._reader.done():
            await self.cancel()
            done, _ = await asyncio.wait([self._reader], timeout=5.0)
            if not done:
                self._call.cancel()
                await asyncio.wait([self._reader], timeout=5.0)
        self._writer.cancel()
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
                      batches: bool = True, **options) -> AsyncSession:
        """Open a session; the arguments are Client.realify's (``shared_memory`` None: picked for a loopback daemon)."""
        config, batching = self._session_config(buffers, shared_memory, batches, options)
        return await AsyncSession.open(lambda: self._realify(metadata=self._metadata), config, self.address,
                                       self.max_message_bytes, batching)

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
