"""A stand-in Realify server for client tests of connection handling (not of realify).

    python tests/realify_server_double.py PORT DELAY_SECONDS

It waits DELAY_SECONDS before listening on 127.0.0.1:PORT, so a client that opens a session
first sees UNAVAILABLE, as it would while a daemon restarts; then it starts every session
and answers EndOfStream with Done. Named a double: it runs no model and is never a backend.
"""

from __future__ import annotations

import sys
import time
from concurrent import futures

import grpc

from c2r.v1 import coarse2real_pb2 as pb
from c2r.v1 import coarse2real_pb2_grpc as pb_grpc


class RealifyServicerDouble(pb_grpc.Coarse2RealServicer):
    def Realify(self, request_iterator, context):
        config = next(request_iterator).config
        yield pb.ServerMessage(started=pb.SessionStarted(session_id="double", effective=config))
        received = sum(1 for message in request_iterator if message.WhichOneof("kind") == "frame")
        yield pb.ServerMessage(done=pb.Done(frames_received=received, frames_returned=0, seconds=0.0))


def main(port: int, delay: float) -> None:
    time.sleep(delay)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_Coarse2RealServicer_to_server(RealifyServicerDouble(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("listening", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
