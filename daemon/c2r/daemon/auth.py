"""Bearer-token check on every call, when the daemon was started with --token."""

from __future__ import annotations

import hmac

import grpc


class TokenAuth(grpc.aio.ServerInterceptor):
    def __init__(self, token: str):
        self.expected = f"Bearer {token}"

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        if handler is None or hmac.compare_digest(sent.encode(), self.expected.encode()):
            return handler
        message = (
            "missing authorization metadata" if not sent else "wrong token in the authorization metadata"
        ) + "; this daemon was started with --token: send 'authorization: Bearer <token>' (c2r.client.connect(token=...))"

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(handler.request_streaming, handler.response_streaming)]
        return make(deny, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
