using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using C2R.V1;
using Coarse2Real.Core;
using Cysharp.Net.Http;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coarse2Real
{
    /// <summary>
    /// A gRPC channel to the daemon over HTTP/2 cleartext. Unity's own HttpClient handler has no
    /// HTTP/2, so the channel uses YetAnotherHttpHandler (Cysharp), which brings a native HTTP/2
    /// stack to Mono and IL2CPP. Message limits match the daemon's (64 MiB). Every failure leaves
    /// here as a <see cref="DaemonException"/> whose message says what to do (Core's DaemonStatus).
    /// </summary>
    public sealed class DaemonConnection : IDisposable
    {
        public const int MaxMessageBytes = 64 * 1024 * 1024;
        public const string ClientName = "unity com.coarse2real.realify 0.2.0";

        readonly GrpcChannel channel;

        public DaemonConnection(string address, string token)
        {
            DaemonAddress parsed = DaemonAddress.Parse(address);
            parsed.RequireTokenIfRemote(token);
            Address = address;
            Headers = new Metadata();
            if (!string.IsNullOrEmpty(token))
            {
                Headers.Add("authorization", "Bearer " + token);
            }
            channel = GrpcChannel.ForAddress(parsed.Uri, new GrpcChannelOptions
            {
                HttpHandler = new YetAnotherHttpHandler { Http2Only = true },
                DisposeHttpClient = true,
                MaxSendMessageSize = MaxMessageBytes,
                MaxReceiveMessageSize = MaxMessageBytes,
            });
            Invoker = channel.CreateCallInvoker();
        }

        public string Address { get; }
        public Metadata Headers { get; }
        public CallInvoker Invoker { get; }

        /// <summary>GetInfo, with the protocol major checked: the daemon as the window shows it.</summary>
        public async Task<InfoReply> InfoAsync(CancellationToken cancel)
        {
            var request = new InfoRequest { ProtocolMajor = (uint)ProtocolVersion.ProtocolMajor, ProtocolMinor = DaemonStatus.ProtocolMinor, ClientName = ClientName };
            InfoReply reply;
            try
            {
                reply = await Invoker.AsyncUnaryCall(Coarse2RealMethods.GetInfo, null, new CallOptions(Headers, DateTime.UtcNow.AddSeconds(10), cancel), request);
            }
            catch (RpcException error)
            {
                throw Friendly(error);
            }
            string problem = DaemonStatus.VersionProblem(reply.ProtocolMajor, reply.ProtocolMinor, (uint)ProtocolVersion.ProtocolMajor, DaemonStatus.ProtocolMinor, Address);
            if (problem != null)
            {
                throw new DaemonException(problem);
            }
            return reply;
        }

        /// <summary>
        /// Plan (protocol 1.1): would a session with <paramref name="config"/> on frames of
        /// <paramref name="width"/> x <paramref name="height"/> fit the daemon's GPU, and how long would
        /// <paramref name="frames"/> frames take (0: one window). Ask only where <see cref="DaemonStatus.CanPlan"/>.
        /// </summary>
        public async Task<PlanReply> PlanAsync(SessionConfig config, uint width, uint height, uint frames, CancellationToken cancel)
        {
            var request = new PlanRequest { Config = config, Width = width, Height = height, Frames = frames };
            try
            {
                return await Invoker.AsyncUnaryCall(Coarse2RealMethods.Plan, null, new CallOptions(Headers, DateTime.UtcNow.AddSeconds(10), cancel), request);
            }
            catch (RpcException error)
            {
                throw Friendly(error);
            }
        }

        public static string Describe(InfoReply info) => DaemonStatus.Describe(
            info.DaemonVersion, info.ProtocolMajor, info.ProtocolMinor, info.Device, info.Models.ToList(), info.Qualities.ToList(),
            info.Gpus.Select(g => $"{g.Name} ({g.FreeBytes >> 30} of {g.TotalBytes >> 30} GiB free)").ToList());

        public DaemonException Friendly(RpcException error) => new DaemonException(DaemonStatus.Friendly(error.StatusCode.ToString(), error.Status.Detail, Address), error);

        public void Dispose() => channel.Dispose();
    }

    /// <summary>A daemon failure whose message is meant for the user (what happened, what to do).</summary>
    public sealed class DaemonException : Exception
    {
        public DaemonException(string message, Exception inner = null) : base(message, inner)
        {
        }
    }
}
