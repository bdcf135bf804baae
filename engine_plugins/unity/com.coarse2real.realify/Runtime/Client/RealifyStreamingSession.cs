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
    /// </summary>
    public sealed class RealifyStreamingSession : IDisposable
    {
        readonly RealifySessionProtocol protocol = new RealifySessionProtocol();
        readonly SemaphoreSlim writeLock = new SemaphoreSlim(1, 1);
        readonly CancellationTokenSource life = new CancellationTokenSource();
        AsyncDuplexStreamingCall<ClientMessage, ServerMessage> call;
        DaemonConnection connection;
        Task reader;

        public event Action<ResultFrame> ResultArrived;
        public event Action<Progress> ProgressArrived;
        public event Action<string> WarningArrived;
        public event Action<Done> Finished;
        public event Action<string> Failed;

        public RealifySessionProtocol Protocol => protocol;
        public string SessionId { get; private set; } = "";

        public static SessionConfig DefaultConfig(string prompt, string model, string quality, string resolution, bool withNormals) => new SessionConfig
        {
            ProtocolMajor = (uint)ProtocolVersion.ProtocolMajor,
            ProtocolMinor = 0,
            ClientName = DaemonConnection.ClientName,
            Prompt = prompt ?? "",
            Model = model ?? "",
            Quality = quality ?? "",
            Resolution = resolution ?? "",
            Buffers = { withNormals ? new[] { C2R.V1.Buffer.Color, C2R.V1.Buffer.Depth, C2R.V1.Buffer.Normals } : new[] { C2R.V1.Buffer.Color, C2R.V1.Buffer.Depth } },
            ResultEncoding = ResultEncoding.RawRgb8,
        };

        public async Task OpenAsync(DaemonConnection connection, SessionConfig config)
        {
            this.connection = connection;
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
            var frame = new Frame { Index = (ulong)index, Color = ToPlane(color), ColorSpace = C2R.V1.ColorSpace.Srgb, DepthKind = DepthKind.Distance };
            if (depth != null)
            {
                frame.Depth = ToPlane(depth);
            }
            if (normals != null)
            {
                frame.Normals = ToPlane(normals);
            }
            await WriteAsync(() => protocol.SendFrame(index), new ClientMessage { Frame = frame });
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
                while (await call.ResponseStream.MoveNext(life.Token))
                {
                    ServerMessage message = call.ResponseStream.Current;
                    switch (message.KindCase)
                    {
                        case ServerMessage.KindOneofCase.Result:
                            protocol.Receive(ServerMessageKind.Result, (long)message.Result.Index, message.Result.Preview);
                            ResultArrived?.Invoke(message.Result);
                            break;
                        case ServerMessage.KindOneofCase.Progress:
                            ProgressArrived?.Invoke(message.Progress);
                            break;
                        case ServerMessage.KindOneofCase.Warning:
                            WarningArrived?.Invoke(message.Warning.Message);
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

        void Fail(string message)
        {
            protocol.Fail(message);
            if (protocol.State == SessionState.Failed)
            {
                Failed?.Invoke(protocol.Error);
            }
        }

        static Plane ToPlane(PackedPlane packed)
        {
            var plane = new Plane { Dtype = (DType)(int)packed.DType, Data = ByteString.CopyFrom(packed.Data) };
            plane.Shape.Add(packed.Shape);
            return plane;
        }

        public void Dispose()
        {
            life.Cancel();
            call?.Dispose();
            life.Dispose();
        }
    }
}
