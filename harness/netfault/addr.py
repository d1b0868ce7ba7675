"""Addresses as the Go server writes and parses them, and the listening sockets of the server."""
from __future__ import annotations

import socket

# Real Toxiproxy listens with Go's backlog (the kernel's somaxconn, 4096 here).  asyncio's
# create_server(sock=...) calls listen() again with 100 unless told otherwise, so every caller
# passes this too; with 100, a burst of 200 connects left some clients waiting a 1 s SYN retry.
BACKLOG = 4096

def split_hostport(addr: str) -> tuple[str, int]:
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or not addr[end + 1:].startswith(":"):
            raise ValueError(f"address {addr}: missing port in address")
        host, port = addr[1:end], addr[end + 2:]
    else:
        host, sep, port = addr.rpartition(":")
        if not sep:
            raise ValueError(f"address {addr}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {addr}: too many colons in address")
    if port.isdigit():
        num = int(port)
    else:
        try:
            num = socket.getservbyname(port, "tcp")
        except OSError:
            raise ValueError(f"address {addr}: unknown port") from None
    if not 0 <= num <= 65535:
        raise ValueError(f"address {addr}: invalid port")
    return host, num


def format_addr(sockname) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_socket(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, _, proto, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock

