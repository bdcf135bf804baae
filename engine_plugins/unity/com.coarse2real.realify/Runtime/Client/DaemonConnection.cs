using System;
using System.Threading;
using System.Threading.Tasks;
using C2R.V1;
using Cysharp.Net.Http;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coarse2Real
{
    /// <summary>
    /// A gRPC channel to the daemon over HTTP/2 cleartext. Unity's own HttpClient handler has no
    /// HTTP/2, so the channel uses YetAnotherHttpHandler (Cysharp), which brings a native HTTP/2
    /// stack to Mono and IL2CPP. Message limits match the daemon's (64 MiB).
    /// </summary>
    public sealed class DaemonConnection : IDisposable
    {
        public const int MaxMessageBytes = 64 * 1024 * 1024;
        public const string ClientName = "unity com.coarse2real.realify 0.1.0";

        readonly GrpcChannel channel;

        public DaemonConnection(string address = "127.0.0.1:50051", string token = null)
        {
            string host = address.Split(':')[0];
            bool local = host == "127.0.0.1" || host == "localhost" || host == "[::1]";
            if (!local && string.IsNullOrEmpty(token))
            {
                throw new ArgumentException($"daemon address {address} is not local: set the token the daemon was started with (--token)");
            }
            Address = address;
            Headers = new Metadata();
            if (!string.IsNullOrEmpty(token))
            {
                Headers.Add("authorization", "Bearer " + token);
            }
            channel = GrpcChannel.ForAddress("http://" + address, new GrpcChannelOptions
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

        public async Task<InfoReply> InfoAsync(CancellationToken cancel = default)
        {
            var request = new InfoRequest { ProtocolMajor = (uint)ProtocolVersion.ProtocolMajor, ProtocolMinor = 0, ClientName = ClientName };
            try
            {
                return await Invoker.AsyncUnaryCall(Coarse2RealMethods.GetInfo, null, new CallOptions(Headers, DateTime.UtcNow.AddSeconds(10), cancel), request);
            }
            catch (RpcException error) when (error.StatusCode == StatusCode.Unavailable)
            {
                throw new InvalidOperationException(
                    $"no coarse2real daemon answers at {Address}: start one with `c2r serve` (or `c2r serve --port N` and set the port here)", error);
            }
        }

        public void Dispose() => channel.Dispose();
    }
}
