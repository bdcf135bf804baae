using System;
using System.Threading;
using System.Threading.Tasks;
using C2R.V1;
using Coarse2Real.Core;
using Google.Protobuf;
using Grpc.Core;

namespace Coarse2Real
{
    /// <summary>
    /// One Realify stream: the message order is RealifySessionProtocol's (config, frames with
    /// consecutive indices, end or cancel); this class only moves those messages over gRPC.
    /// Writes are serialised (a gRPC request stream takes one write at a time) and awaiting
    /// a write is the backpressure: a daemon that is behind slows the capture, never the editor.
    /// Events fire on a thread-pool thread; the editor window marshals them to the main thread.
    ///
    /// Same host (the config asked for Transport.SharedMemory and the daemon granted it): the first
    /// frame sizes a ring of slots (Core's SharedRingLayout, the proto's layout), the segment is made
    /// (SharedRingSegment) and offered with ClientMessage.ring; once the daemon answers attached, each
    /// frame's planes are copied into a free slot and the Frame carries only the slot and the offsets.
    /// A slot is free again when the daemon lists it in SlotsReleased. Refused, unsupported here, or a
    /// frame larger than a slot: that frame goes as bytes, as before.
    /// </summary>
    public sealed class RealifyStreamingSession : IDisposable
    {
        readonly RealifySessionProtocol protocol = new RealifySessionProtocol();
        readonly SemaphoreSlim writeLock = new SemaphoreSlim(1, 1);
        readonly CancellationTokenSource life = new CancellationTokenSource();
        AsyncDuplexStreamingCall<ClientMessage, ServerMessage> call;
        DaemonConnection connection;
        Task reader;
        const int RingSlots = 8;
        readonly object ringLock = new object();
        readonly SemaphoreSlim freeSlots = new SemaphoreSlim(0);
        readonly TaskCompletionSource<RingStatus> ringStatus = new TaskCompletionSource<RingStatus>();
        bool sharedMemory;
        ulong maxRingBytes;
        SharedRingLayout ring;
        SharedRingSegment segment;

        public event Action<ResultFrame> ResultArrived;
        public event Action<Progress> ProgressArrived;
        public event Action<string> WarningArrived;
        public event Action<Done> Finished;
        public event Action<string> Failed;

        public RealifySessionProtocol Protocol => protocol;
        public string SessionId { get; private set; } = "";

        /// <summary>What the package sends; <paramref name="sharedMemory"/>: ask for the same-host ring (see <see cref="WantsSharedMemory"/>).</summary>
        public static SessionConfig DefaultConfig(string prompt, string model, string quality, string resolution, bool withNormals, bool sharedMemory = false) => new SessionConfig
        {
            Transport = sharedMemory ? Transport.SharedMemory : Transport.Bytes,
            ProtocolMajor = (uint)ProtocolVersion.ProtocolMajor,
            ProtocolMinor = DaemonStatus.ProtocolMinor,
            ClientName = DaemonConnection.ClientName,
            Prompt = prompt ?? "",
            Model = model ?? "",
            Quality = quality ?? "",
            Resolution = resolution ?? "",
            Buffers = { withNormals ? new[] { C2R.V1.Buffer.Color, C2R.V1.Buffer.Depth, C2R.V1.Buffer.Normals } : new[] { C2R.V1.Buffer.Color, C2R.V1.Buffer.Depth } },
            ResultEncoding = ResultEncoding.RawRgb8,
            Batches = true, // results may come as ResultBatch (protocol 1.2); ReadMessagesAsync reads both kinds
        };

        /// <summary>Worth asking for shared memory: a daemon on this machine that offers it, and a system where the package can make a segment.</summary>
        public static bool WantsSharedMemory(string address, InfoReply info) =>
            DaemonAddress.Parse(address).IsLoopback && info.Capabilities != null && info.Capabilities.SharedMemory && SharedRingSegment.Supported;

        public async Task OpenAsync(DaemonConnection connection, SessionConfig config, InfoReply info)
        {
            this.connection = connection;
            maxRingBytes = info.Limits != null ? info.Limits.MaxRingBytes : 0;
            protocol.Open();
            call = connection.Invoker.AsyncDuplexStreamingCall(Coarse2RealMethods.Realify, null, new CallOptions(connection.Headers, cancellationToken: life.Token));
            bool started;
            try
            {
                await call.RequestStream.WriteAsync(new ClientMessage { Config = config });
                started = await call.ResponseStream.MoveNext(life.Token) && call.ResponseStream.Current.KindCase == ServerMessage.KindOneofCase.Started;
            }
            catch (RpcException error)
            {
                throw connection.Friendly(error);
            }
            if (!started)
            {
                throw new DaemonException($"the daemon at {connection.Address} did not start the session; see its log");
            }
            SessionId = call.ResponseStream.Current.Started.SessionId;
            sharedMemory = call.ResponseStream.Current.Started.Effective.Transport == Transport.SharedMemory; // granted
            foreach (string warning in call.ResponseStream.Current.Started.Warnings)
            {
                WarningArrived?.Invoke(warning);
            }
            protocol.Receive(ServerMessageKind.Started);
            reader = Task.Run(ReadAllAsync);
        }

        /// <summary>Send one captured frame (colour sRGB, depth already DISTANCE in metres, optional normals).</summary>
        public async Task SendAsync(long index, PackedPlane color, PackedPlane depth, PackedPlane normals)
        {
            var planes = new[] { color, depth, normals };
            var frame = new Frame { Index = (ulong)index, ColorSpace = C2R.V1.ColorSpace.Srgb, DepthKind = DepthKind.Distance };
            long[] offsets = await PutInRingAsync(frame, planes);
            frame.Color = ToPlane(color, offsets, 0);
            if (depth != null)
            {
                frame.Depth = ToPlane(depth, offsets, 1);
            }
            if (normals != null)
            {
                frame.Normals = ToPlane(normals, offsets, 2);
            }
            await WriteAsync(() => protocol.SendFrame(index), new ClientMessage { Frame = frame });
        }

        /// <summary>The planes' offsets in the slot now named by <paramref name="frame"/>, or null: send them as bytes.</summary>
        async Task<long[]> PutInRingAsync(Frame frame, PackedPlane[] planes)
        {
            if (!sharedMemory || !await RingReadyAsync(planes))
            {
                return null;
            }
            long needed;
            SharedRingLayout.Offsets(planes, out needed);
            if (needed > ring.SlotBytes)
            {
                return null; // a larger frame than the first: bytes for this one
            }
            await freeSlots.WaitAsync(life.Token); // backpressure: wait for the daemon to release a slot
            int slot;
            lock (ringLock)
            {
                slot = ring.Take();
            }
            frame.Slot = (uint)slot;
            return ring.Write(segment.Write, slot, planes);
        }

        /// <summary>Make and offer the ring on the first frame; false (and bytes from now on) if it cannot be had.</summary>
        async Task<bool> RingReadyAsync(PackedPlane[] planes)
        {
            if (ring != null)
            {
                return true;
            }
            long slotBytes;
            SharedRingLayout.Offsets(planes, out slotBytes);
            int slots = maxRingBytes > 0 ? (int)Math.Min(RingSlots, (long)(maxRingBytes / (ulong)slotBytes)) : RingSlots;
            try
            {
                if (slots < 1)
                {
                    throw new InvalidOperationException($"a {slotBytes}-byte slot exceeds the daemon's ring limit of {maxRingBytes} bytes");
                }
                var layout = new SharedRingLayout(slots, slotBytes);
                segment = SharedRingSegment.Create(SharedRingSegment.NewName(), layout.SegmentBytes);
                await WriteAsync(null, new ClientMessage { Ring = new SharedRing { Name = segment.Name, Slots = (uint)slots, SlotBytes = (ulong)slotBytes } });
                RingStatus status = await ringStatus.Task;
                if (!status.Attached)
                {
                    throw new InvalidOperationException(status.Reason);
                }
                ring = layout;
                freeSlots.Release(slots);
                return true;
            }
            catch (Exception error) when (!(error is OperationCanceledException))
            {
                sharedMemory = false;
                if (segment != null)
                {
                    segment.Dispose();
                    segment = null;
                }
                WarningArrived?.Invoke($"shared memory not used ({error.Message}); sending frames as bytes");
                return false;
            }
        }

        public Task EndAsync() => WriteAsync(() => protocol.End(), new ClientMessage { End = new EndOfStream() }, complete: true);

        public async Task CancelAsync()
        {
            if (protocol.Cancel() == null)
            {
                return;
            }
            try
            {
                await WriteAsync(null, new ClientMessage { Cancel = new C2R.V1.Cancel() }, complete: true);
            }
            catch (Exception)
            {
                life.Cancel(); // the stream is already broken (or closed): drop the call
            }
        }

        async Task WriteAsync(Action checkProtocol, ClientMessage message, bool complete = false)
        {
            await writeLock.WaitAsync();
            try
            {
                checkProtocol?.Invoke();
                await call.RequestStream.WriteAsync(message);
                if (complete)
                {
                    await call.RequestStream.CompleteAsync();
                }
            }
            finally
            {
                writeLock.Release();
            }
        }

        async Task ReadAllAsync()
        {
            try
            {
                await ReadMessagesAsync();
            }
            finally
            {
                ringStatus.TrySetResult(new RingStatus { Attached = false, Reason = "the session ended" }); // a sender waiting on the ring never hangs
            }
        }

        async Task ReadMessagesAsync()
        {
            try
            {
                while (await call.ResponseStream.MoveNext(life.Token))
                {
                    ServerMessage message = call.ResponseStream.Current;
                    switch (message.KindCase)
                    {
                        case ServerMessage.KindOneofCase.Result:
                            Arrived(message.Result);
                            break;
                        case ServerMessage.KindOneofCase.Results: // protocol 1.2: several, in order, each as if alone
                            foreach (ResultFrame result in message.Results.Frames)
                            {
                                Arrived(result);
                            }
                            break;
                        case ServerMessage.KindOneofCase.Progress:
                            ProgressArrived?.Invoke(message.Progress);
                            break;
                        case ServerMessage.KindOneofCase.Warning:
                            WarningArrived?.Invoke(message.Warning.Message);
                            break;
                        case ServerMessage.KindOneofCase.Ring:
                            ringStatus.TrySetResult(message.Ring);
                            break;
                        case ServerMessage.KindOneofCase.Released:
                            lock (ringLock)
                            {
                                ring.Release(message.Released.Slots);
                            }
                            freeSlots.Release(message.Released.Slots.Count);
                            break;
                        case ServerMessage.KindOneofCase.Done:
                            protocol.Receive(ServerMessageKind.Done);
                            Finished?.Invoke(message.Done);
                            break;
                    }
                }
            }
            catch (RpcException error)
            {
                Fail(connection.Friendly(error).Message);
            }
            catch (OperationCanceledException)
            {
                Fail("the session was stopped"); // our own Dispose/cancel: a cancelled protocol stays Cancelled
            }
            catch (Exception error)
            {
                // A result the protocol refuses, a malformed plane, a handler that threw: never a silent end.
                Fail($"the session stopped on an unexpected error: {error.GetType().Name}: {error.Message}");
            }
        }

        void Arrived(ResultFrame result)
        {
            protocol.Receive(ServerMessageKind.Result, (long)result.Index, result.Preview);
            ResultArrived?.Invoke(result);
        }

        void Fail(string message)
        {
            protocol.Fail(message);
            if (protocol.State == SessionState.Failed)
            {
                Failed?.Invoke(protocol.Error);
            }
        }

        /// <summary>The plane as the wire carries it: its bytes, or (in a ring slot) only where they are.</summary>
        static Plane ToPlane(PackedPlane packed, long[] offsets, int position)
        {
            var plane = new Plane { Dtype = (DType)(int)packed.DType };
            if (offsets == null)
            {
                plane.Data = ByteString.CopyFrom(packed.Data);
            }
            else
            {
                plane.Offset = (ulong)offsets[position];
            }
            plane.Shape.Add(packed.Shape);
            return plane;
        }

        public void Dispose()
        {
            life.Cancel();
            if (call != null)
            {
                call.Dispose();
            }
            if (segment != null)
            {
                segment.Dispose(); // unlinks the name if the daemon had not yet
            }
            life.Dispose();
        }
    }
}
