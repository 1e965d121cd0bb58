"""A TCP proxy in front of a real server, stopped and started to simulate an outage (tests/faults, bench/soak.py).

`stop()` closes the listening socket and every open connection, as a database that crashes or is restarted
does: clients see their connections reset and new connections refused. `start()` listens again on the same port.
`cut_after(pattern)` breaks the one connection that next sends `pattern`, right after forwarding it: the server
gets the request (e.g. a COMMIT) but the client never gets the answer — the ambiguous failure.
Threads, not asyncio, so it runs beside any test or benchmark without an event loop.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `up` tells whether it currently accepts connections."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut: tuple[bytes, threading.Event] | None = None

    @property
    def up(self) -> bool:
        """True while connections are accepted and forwarded."""
        return self._listener is not None

    def start(self) -> TcpProxy:
        """Listen (on the same port as before, after a stop); idempotent."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and reset every open one (idempotent)."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
            listener.close()
        for conn in connections:
            _reset(conn)

    def cut_after(self, pattern: bytes) -> threading.Event:
        """Arm a one-time cut: the next client chunk containing `pattern` is forwarded, then that connection is
        closed both ways before the server's answer can come back. The event is set once it happened."""
        done = threading.Event()
        with self._lock:
            self._cut = (pattern, done)
        return done

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stop() closed the listener
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    _reset(client)
                    _reset(server)
                    return
                self._connections.update((client, server))
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, upstream), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                cut = self._cut
                if upstream and cut is not None and cut[0] in chunk:
                    with self._lock:
                        self._cut = None
                    _reset(source)  # the request reached the server; its answer will reach no one
                    _reset(sink)
                    cut[1].set()
                    return
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)
            _reset(source)
            _reset(sink)


def _reset(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
