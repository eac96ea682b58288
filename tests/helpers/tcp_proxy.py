"""A TCP proxy for tests that can stop forwarding: a database that accepts connections and then goes silent."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class StallingProxy:
    """Forwards 127.0.0.1:<port> to `target`; after `stall_after` client bytes (None: never) it stops forwarding
    in both directions but keeps every socket open, as a hung server or a dead network path does."""

    def __init__(self, target: tuple[str, int], *, stall_after: int | None = None) -> None:
        self.target, self.stall_after = target, stall_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._from_client: set[socket.socket] = set()
        self.forwarded = 0
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stalling-proxy", daemon=True)

    def start(self) -> StallingProxy:
        self._thread.start()
        return self

    def stall(self) -> None:
        self.stalled.set()

    def close(self) -> None:
        """Close every socket: the server then sees its clients gone (and rolls their transactions back)."""
        self._closing.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._peers]:
            with contextlib.suppress(OSError):
                sock.close()

    def _loop(self) -> None:
        while not self._closing.is_set():
            if self.stalled.is_set():     # nothing is read, accepted or sent; the kernel still queues connects
                self._closing.wait(0.05)
                continue
            for key, _ in self._selector.select(timeout=0.05):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj in self._peers and not self.stalled.is_set():
                    self._forward(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        server = socket.create_connection(self.target)
        self._peers[client], self._peers[server] = server, client
        self._from_client.add(client)
        for sock in (client, server):
            self._selector.register(sock, selectors.EVENT_READ)

    def _forward(self, source: socket.socket) -> None:
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(source)
            return
        if source in self._from_client:
            if self.stall_after is not None and self.forwarded + len(data) > self.stall_after:
                self.stalled.set()    # these bytes and everything after are never delivered
                return
            self.forwarded += len(data)
        with contextlib.suppress(OSError):
            self._peers[source].sendall(data)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for end in (sock, peer):
            if end is None:
                continue
            self._peers.pop(end, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(end)
            with contextlib.suppress(OSError):
                end.close()
