"""Running the gateway app with uvicorn: in the foreground (the `serve` command) or in a background thread.

    sock = bind("127.0.0.1", 0)                     # port 0: a free port; the URL is known before serving
    run(app, sock)                                  # blocks until Ctrl+C (or `server.should_exit`)
    server = BackgroundServer(app).start()          # tests and benchmarks: a daemon thread
    server.url                                      # http://127.0.0.1:PORT
    server.stop()

Not covered: TLS, several worker processes (one process owns the model), Unix sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (OSError when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Any, log_level: str = "warning") -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5))


def run(app: Any, sock: socket.socket, server: uvicorn.Server | None = None) -> None:
    """Serve `app` on `sock` in this thread until the server is told to exit."""
    (server or make_server(app)).run(sockets=[sock])


class BackgroundServer:
    """uvicorn serving `app` from a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.sock = app, bind(host, port)
        self.url = url_of(self.sock)
        self.server = make_server(app)
        self.thread = threading.Thread(target=run, args=(app, self.sock, self.server), name="gateway-http",
                                       daemon=True)

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
