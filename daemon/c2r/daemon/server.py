"""The front end: the asyncio gRPC service c2r.v1.Coarse2Real, health and reflection.

It owns sessions and jobs and never runs the model: windows go through the scheduler to
the engine processes (``engine_pool``, ``engine_client``), so an engine crash, hang or OOM
costs a window, not the daemon. Every client-caused failure is a ``ClientError`` mapped to its status here.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import logging
import signal
import sys
import uuid

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from c2r.client.frames import serialized
from c2r.client.version import __version__
from c2r.models.backend import QUALITY_PRESETS
from c2r.v1 import coarse2real_pb2 as pb
from c2r.v1 import coarse2real_pb2_grpc as pb_grpc

from . import telemetry
from .auth import TokenAuth
from .cluster import ClusterScheduler
from .engine_pool import EnginePool
from .ipc import sweep_stale_segments
from .errors import ClientError, InvalidInput, SessionCancelled, TooLarge
from .frame_check import FrameChecker
from .planes import Received, decode_client_message
from .shared_ring import RingRefused, SessionRing
from .jobs import JobManager
from .planning import plan_reply
from .preview import PreviewRelay
from .scheduler import WindowScheduler
from .session import Session
from .session_config import PROTOCOL_MAJOR, PROTOCOL_MINOR, protocol_warnings, resolve
from .settings import LIMITS, MAX_MESSAGE_BYTES, TRANSPORT_MESSAGE_BYTES, DaemonSettings, private_folder

log = logging.getLogger("c2r.daemon")
SERVICE = pb.DESCRIPTOR.services_by_name["Coarse2Real"].full_name


def check_size(size: int) -> None:
    """Refuse a message of ``size`` bytes over the limit (gRPC itself reads up to TRANSPORT_MESSAGE_BYTES)."""
    if size > MAX_MESSAGE_BYTES:
        raise TooLarge(
            f"message of {size / 2**20:.1f} MiB exceeds the daemon's limit of {MAX_MESSAGE_BYTES / 2**20:.0f} MiB per message; "
            "lower the resolution, send colour as UINT8 and depth/normals as FLOAT16, or leave out buffers you do not need"
        )


def reports_client_errors(handler):
    """A unary or server-streaming handler whose ClientError becomes the call's status and message."""
    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self, request, context):
            try:
                async for item in handler(self, request, context):
                    yield item
            except ClientError as e:
                await context.abort(e.code, str(e))

        return streaming

    @functools.wraps(handler)
    async def unary(self, request, context):
        try:
            return await handler(self, request, context)
        except ClientError as e:
            await context.abort(e.code, str(e))

    return unary


class FrameDecoding:
    """What ``add_Coarse2RealServicer_to_server`` registers on: the server, with Realify's requests read by
    ``planes.decode_client_message`` (pixels as views, no protobuf copies) instead of ClientMessage.FromString."""

    def __init__(self, server):
        self.server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.server.add_generic_rpc_handlers(handlers)  # the same methods' registered handlers below go first

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        realify = handlers["Realify"]._replace(request_deserializer=decode_client_message, response_serializer=serialized)
        self.server.add_registered_method_handlers(service, {**handlers, "Realify": realify})


def is_loopback_peer(peer: str) -> bool:
    """gRPC's peer string ("ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:..."): a client on this machine."""
    return peer.startswith(("ipv4:127.", "ipv6:[::1]", "unix:"))


def stream_error(error: Exception, received: int) -> ClientError:
    """What a client is told when its stream could not be read (an undecodable message, a broken connection)."""
    if isinstance(error, DecodeError):
        return InvalidInput(f"message after frame {received} could not be decoded ({error}); send ClientMessages "
                            "built from coarse2real.proto")
    return ClientError(f"the daemon could not read the stream after {received} frames ({type(error).__name__}: {error}); "
                       "the accepted frames were returned; see the daemon log and resend from there")


class Coarse2RealService(pb_grpc.Coarse2RealServicer):
    def __init__(self, settings: DaemonSettings, engines: EnginePool, scheduler: WindowScheduler, jobs: JobManager,
                 preview_address: str):
        self.settings, self.engines, self.scheduler, self.jobs = settings, engines, scheduler, jobs
        self.preview_address = preview_address

    # ------------------------------------------------------------------ info

    @reports_client_errors
    async def GetInfo(self, request: pb.InfoRequest, context) -> pb.InfoReply:
        warnings = protocol_warnings(request.protocol_major, request.protocol_minor)
        info = self.engines.info
        gpus = await asyncio.to_thread(telemetry.gpus)
        return pb.InfoReply(
            daemon_version=__version__, protocol_major=PROTOCOL_MAJOR, protocol_minor=PROTOCOL_MINOR,
            gpus=[pb.Gpu(**g) for g in gpus], loaded_model=info.get("loaded_model", ""),
            models=info.get("models", []), qualities=sorted(QUALITY_PRESETS),
            capabilities=pb.Capabilities(progressive_preview=True, jobs=True, causal_ref=True, png_results=True,
                                         exr_output=importlib.util.find_spec("OpenEXR") is not None,
                                         shared_memory=True),
            max_message_bytes=MAX_MESSAGE_BYTES, warnings=warnings, preview_address=self.preview_address,
            output_root=str(self.settings.output_root), device=info.get("device", ""), limits=LIMITS.message(),
        )

    @reports_client_errors
    async def Plan(self, request: pb.PlanRequest, context) -> pb.PlanReply:
        resolved = resolve(request.config, self.engines.info.get("models", []), self.settings)
        gpus = await asyncio.to_thread(telemetry.gpus)
        device = self.engines.info.get("device", "") or self.settings.device
        return await asyncio.to_thread(plan_reply, request, resolved, device, gpus, self.settings.gpus_per_window)

    # ------------------------------------------------------------------ interactive sessions

    async def Realify(self, request_iterator, context) -> None:
        session: Session | None = None
        tasks: list[asyncio.Task] = []
        try:
            received: Received = await context.read()
            first = None if received is grpc.aio.EOF else received.message
            if first is None or first.WhichOneof("kind") != "config":
                got = "nothing" if first is None else f"a {first.WhichOneof('kind')} message"
                raise InvalidInput(f"the first message of a Realify stream must be a SessionConfig, got {got}; send the config first")
            check_size(received.size)
            resolved = resolve(first.config, self.engines.info.get("models", []), self.settings)
            shared = first.config.transport == pb.SHARED_MEMORY and is_loopback_peer(context.peer())
            resolved.effective.transport = pb.SHARED_MEMORY if shared else pb.BYTES
            if resolved.config.chaining != "sequential":
                raise InvalidInput(f"chaining={resolved.config.chaining!r} in a live session: a stream cannot wait for "
                                   "its later anchors; use chaining 'sequential', or submit the clip as a job")
            session_id = f"s-{uuid.uuid4().hex[:12]}"
            session = Session(session_id, resolved, self.scheduler, self.settings.state_dir / "spill" / session_id,
                              self.settings.session_memory_mb * 2**20, FrameChecker(resolved.buffers, limits=LIMITS.frames),
                              allocate=self.engines.buffers.allocate, free=self.engines.buffers.free)
            log.info("session %s started: model %s, window %d/%d, buffers %s, transport %s, client %r", session_id,
                     resolved.model, resolved.config.window, resolved.config.overlap, resolved.buffers,
                     pb.Transport.Name(resolved.effective.transport), first.config.client_name)
            await context.write(pb.ServerMessage(started=pb.SessionStarted(
                session_id=session_id, effective=resolved.effective, warnings=resolved.warnings)))
            tasks = [asyncio.create_task(self._read_frames(context, session)), asyncio.create_task(session.run())]
            while True:
                item, finals = await session.outbox.get()
                if item is None:
                    break
                if isinstance(item, ClientError):
                    raise item
                if callable(item):  # a result, packed only now (a coalesced preview may never be); PNG off the loop
                    item = await asyncio.to_thread(item) if session.png else item()
                await context.write(item)
                if finals:
                    await session.delivered_results(finals)
            log.info("session %s done: %d frames in (%d through shared memory), %d out", session_id, session.received,
                     session.through_ring, session.returned)
        except ClientError as e:
            if session:
                log.info("session %s ended: %s", session.id, e)
            await context.abort(e.code, str(e))
        finally:
            for task in tasks:
                task.cancel()
            if session:
                await self._drop(session)

    async def _read_frames(self, context, session: Session) -> None:
        """The session's input: frames until the end; any error ends the input (the accepted frames still run)."""
        try:
            while True:
                await session.wait_for_room()
                received: Received = await context.read()
                if received is grpc.aio.EOF:
                    break  # half-close without EndOfStream: same as ending the stream
                check_size(received.size)
                message = received.message
                kind = message.WhichOneof("kind")
                if kind in ("frame", "frames"):
                    frames = received.frames()
                    if len(frames) > LIMITS.max_batch_frames:
                        raise InvalidInput(
                            f"a FrameBatch of {len(frames)} frames is over this daemon's limit of {LIMITS.max_batch_frames} "
                            f"(GetInfo.limits.max_batch_frames), so none of it was accepted; send at most that many frames "
                            f"per batch, resending from frame {session.checker.next_index}")
                    await session.accept(frames)
                elif kind == "ring":
                    self._attach_ring(session, message.ring)
                elif kind == "end":
                    break
                elif kind == "cancel":
                    session.outbox.put(SessionCancelled(
                        f"session cancelled by the client after {session.returned} of {session.received} frames were returned"))
                    return
                else:
                    raise InvalidInput(f"unexpected {kind} message mid-stream; send Frame, FrameBatch, EndOfStream or Cancel "
                                       "after the config")
            await session.end()
        except ClientError as e:
            await session.end(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # never a silent death: the session ends with a status, after its accepted frames
            if not isinstance(e, DecodeError):  # an undecodable message is the client's; anything else is ours
                log.exception("session %s: reading the stream failed", session.id)
            await session.end(stream_error(e, session.received))

    def _attach_ring(self, session: Session, ring: pb.SharedRing) -> None:
        if session.resolved.effective.transport != pb.SHARED_MEMORY:
            status = pb.RingStatus(attached=False, reason="this session's transport is BYTES (the client is not on the "
                                   "daemon's machine, or did not ask for SHARED_MEMORY); send planes as bytes")
        elif session.ring is not None:
            raise InvalidInput(f"a second SharedRing ({ring.name!r}) in session {session.id}; send one ring per session")
        else:
            try:
                session.ring = SessionRing(ring, LIMITS.max_ring_bytes)
                status = pb.RingStatus(attached=True)
            except RingRefused as e:
                status = pb.RingStatus(attached=False, reason=str(e))
        session.outbox.put(pb.ServerMessage(ring=status))

    async def _drop(self, session: Session) -> None:
        self.scheduler.drop_owner(session.id)
        await self.engines.cancel(session.id)
        session.close()
        sweep_stale_segments()  # a client that died between making its ring and offering it

    # ------------------------------------------------------------------ jobs

    @reports_client_errors
    async def SubmitJob(self, request: pb.JobSpec, context) -> pb.Job:
        return await self.jobs.submit(request)

    @reports_client_errors
    async def WatchJob(self, request: pb.JobRef, context):
        async for event in self.jobs.watch(request.id):
            yield event

    @reports_client_errors
    async def CancelJob(self, request: pb.JobRef, context) -> pb.Job:
        return await self.jobs.cancel(request.id)

    async def ListJobs(self, request: pb.ListJobsRequest, context) -> pb.ListJobsReply:
        return pb.ListJobsReply(jobs=self.jobs.list())


def reuse_freed_memory() -> None:
    """Keep big freed blocks (a frame's receive buffers, ~10 MB at 720p) for the next frame (glibc).

    By default glibc hands blocks this size back to the kernel when freed, so every frame the
    front end receives pays ~2500 fresh page faults. The peak (what --session-memory-mb bounds)
    stays within bounds: at most 64 MiB freed memory is kept per heap.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): their allocators keep their defaults
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)  # blocks up to 32 MiB (a 4K frame's plane) come from the heap, reusable
    libc.mallopt(m_trim_threshold, 64 * 2**20)  # give memory back beyond 64 MiB free at a heap's top: a few frames' worth


async def serve(settings: DaemonSettings) -> int:
    reuse_freed_memory()
    private_folder(settings.state_dir)
    for name in sweep_stale_segments():
        log.info("removed shared memory %s left by a process that is gone", name)
    settings.output_root.mkdir(parents=True, exist_ok=True)
    telemetry.log_gpus()
    options = [("grpc.max_receive_message_length", TRANSPORT_MESSAGE_BYTES), ("grpc.max_send_message_length", TRANSPORT_MESSAGE_BYTES)]
    server = grpc.aio.server(options=options, interceptors=[TokenAuth(settings.token)] if settings.token else [])
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        print(f"c2r serve: cannot bind {settings.host}:{settings.port} (in use?); choose another --port", file=sys.stderr)
        return 1
    health_service = health.aio.HealthServicer()
    for name in ("", SERVICE):
        await health_service.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    scheduler = WindowScheduler()
    try:
        relay = PreviewRelay(settings.preview_port)
    except RuntimeError as e:
        print(f"c2r serve: {e}", file=sys.stderr)
        return 1
    try:
        engines = EnginePool(settings, relay.engines_address)
    except ValueError as e:  # --engines / --gpus-per-window that the GPUs cannot make
        print(f"c2r serve: {e}", file=sys.stderr)
        relay.close()
        return 1
    cluster = ClusterScheduler(settings) if settings.ray else None  # batch jobs on Ray, sessions on the local engines
    jobs = JobManager(settings, cluster or scheduler, engines.cancel, engines.buffers)
    pb_grpc.add_Coarse2RealServicer_to_server(Coarse2RealService(settings, engines, scheduler, jobs, relay.address),
                                              FrameDecoding(server))
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    await server.start()
    try:
        info = await engines.start()
    except RuntimeError as e:
        print(f"c2r serve: {e}", file=sys.stderr)
        await server.stop(0)
        await engines.stop()
        relay.close()
        return 1
    if cluster is not None:
        try:
            cluster.start()
        except Exception as e:  # Ray missing, or no cluster at that address
            print(f"c2r serve: --ray {settings.ray}: {e}", file=sys.stderr)
            await server.stop(0)
            await engines.stop()
            relay.close()
            return 1
    dispatcher = asyncio.create_task(engines.dispatch(scheduler))
    jobs.start(info["models"])
    for name in ("", SERVICE):
        await health_service.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(f"c2r daemon listening on {settings.host}:{port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down; unfinished jobs resume at the next start")
    await health_service.enter_graceful_shutdown()
    await server.stop(2)
    await jobs.stop()
    dispatcher.cancel()
    if cluster is not None:
        await cluster.stop()
    await engines.stop()
    relay.close()
    return 0
