"""Free TCP ports on the loopback interface for the embedded services."""

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before returning, so another process can take it before
    the caller binds it; the services retry with new ports when that happens.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return `count` distinct free ports on 127.0.0.1.

    All sockets stay bound until every port is chosen, so the kernel cannot hand
    the same port out twice within one call.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            )
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports
