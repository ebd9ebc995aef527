"""Serving the app with uvicorn: one process, or several sharing one listening socket."""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "service.app:app"


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        # The socket uvicorn shares between worker processes is made with protocol 0, and
        # asyncio sets TCP_NODELAY only on TCP sockets it recognises: without it (Linux passes the
        # option from the listening socket to every accepted one) each small answer waits ~40 ms
        # for the client's delayed ACK (Nagle's algorithm).
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def serve(host: str, port: int, workers: int, log_level: str = "info") -> None:
    """Serve :data:`APP` on ``host:port`` with ``workers`` processes until interrupted."""
    config = _Config(
        APP,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=10,
        # the app itself believes X-Forwarded-* only from CITYGRID_TRUSTED_PROXIES (uvicorn
        # would believe 127.0.0.1 by default)
        proxy_headers=False,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
