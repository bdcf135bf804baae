"""The preview relay: one stable ZeroMQ PUB address for every engine's preview frames.

Engines PUBlish into the relay's XSUB socket (a random loopback port); viewers SUBscribe
to its XPUB socket on ``--preview-port``. The address viewers use therefore stays the same
when an engine is restarted and whatever the number of engines. The relay forwards its
viewers' subscriptions upstream (an engine started later gets them when it connects), so
engines send only what someone watches: with no viewer, no preview or final frame crosses
into the front end at all (for the tiny preview demo that was ~7 MB and ~10 ms of front-end
CPU per window; for 81 frames at 720p, hundreds of MB). Each new viewer first gets
``PREVIEW_WELCOME`` (one part): its subscription is then on its way to the engines (on
loopback it reaches them well within a millisecond), and every frame published after that
reaches it. The framing is the engine's (see ``engine.py``): topic, JSON header, RGB8 bytes.
"""

from __future__ import annotations

import threading

import zmq

from c2r.client.transport import PREVIEW_WELCOME as WELCOME


class PreviewRelay:
    def __init__(self, port: int):
        self.ctx = zmq.Context()
        self.backend = self.ctx.socket(zmq.XSUB)
        self.engines_address = f"tcp://127.0.0.1:{self.backend.bind_to_random_port('tcp://127.0.0.1')}"
        self.frontend = self.ctx.socket(zmq.XPUB)
        self.frontend.setsockopt(zmq.SNDHWM, 256)
        self.frontend.setsockopt(zmq.XPUB_WELCOME_MSG, WELCOME)
        try:
            self.frontend.bind(f"tcp://127.0.0.1:{port or '*'}")
        except zmq.ZMQError as e:
            self.ctx.destroy(linger=0)
            raise RuntimeError(f"cannot bind the preview port {port} ({e}); choose another --preview-port, or 0 for any") from None
        self.address = self.frontend.getsockopt_string(zmq.LAST_ENDPOINT)
        self._thread = threading.Thread(target=self._run, name="preview-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Relay until close(): terminating the context wakes the proxy with ETERM, and this
        thread (the only one using the sockets, as ZeroMQ requires) closes them."""
        try:
            zmq.proxy(self.frontend, self.backend)
        except zmq.ContextTerminated:
            pass
        finally:
            self.frontend.close(linger=0)
            self.backend.close(linger=0)

    def close(self) -> None:
        self.ctx.term()  # returns once _run has closed both sockets
        self._thread.join(timeout=5)
