"""TCP ports: pick free ones, check one."""

from __future__ import annotations

import socket


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_ports(host: str, count: int = 1) -> tuple[int, ...]:
    """``count`` distinct TCP ports free on ``host`` right now.

    The sockets are held open together while chosen, so the ports differ. Another process may
    still take one before the caller binds it: callers retry on "address already in use".
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    socks = [socket.socket(_family(host), socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return tuple(int(sock.getsockname()[1]) for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def port_free(host: str, port: int) -> bool:
    """Can a server bind ``host:port`` now (``SO_REUSEADDR``, as servers bind)?"""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of the process listening on ``port``, where the OS tells."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return None
            try:
                cmdline = " ".join(psutil.Process(conn.pid).cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                cmdline = "?"
            return conn.pid, cmdline[:200]
    return None
