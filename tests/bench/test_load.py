"""bench/load.py: connections per worker are counted from /proc."""

from __future__ import annotations

import os
import socket

from bench.load import established


def test_established_counts_the_connections_each_process_holds() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            # This process holds both ends; only the server side's local port is `port`.
            assert established({os.getpid()}, port) == [3]
        finally:
            for sock in clients + accepted:
                sock.close()
