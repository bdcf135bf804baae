using Google.Protobuf;
using Grpc.Core;

namespace C2R.V1
{
    /// <summary>
    /// The three calls the Unity package makes, declared against Grpc.Core.Api the way
    /// Grpc.Tools' generated client declares them (service "c2r.v1.Coarse2Real", protobuf
    /// binary marshalling). Written by hand because grpc_csharp_plugin cannot be obtained
    /// where this package is built and tested; Tools~/generate_csharp.py --grpc-plugin adds
    /// the full generated client beside it when the plugin is at hand.
    /// </summary>
    public static class Coarse2RealMethods
    {
        public const string ServiceName = "c2r.v1.Coarse2Real";

        static Marshaller<T> ProtobufMarshaller<T>(MessageParser<T> parser) where T : IMessage<T> =>
            Marshallers.Create(message => message.ToByteArray(), parser.ParseFrom);

        public static readonly Method<InfoRequest, InfoReply> GetInfo = new Method<InfoRequest, InfoReply>(
            MethodType.Unary, ServiceName, "GetInfo", ProtobufMarshaller(InfoRequest.Parser), ProtobufMarshaller(InfoReply.Parser));

        public static readonly Method<PlanRequest, PlanReply> Plan = new Method<PlanRequest, PlanReply>(
            MethodType.Unary, ServiceName, "Plan", ProtobufMarshaller(PlanRequest.Parser), ProtobufMarshaller(PlanReply.Parser));

        public static readonly Method<ClientMessage, ServerMessage> Realify = new Method<ClientMessage, ServerMessage>(
            MethodType.DuplexStreaming, ServiceName, "Realify", ProtobufMarshaller(ClientMessage.Parser), ProtobufMarshaller(ServerMessage.Parser));
    }
}
