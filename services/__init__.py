"""Real servers on loopback for the demo and the tests: PostgreSQL, moto, Temporal.

Each is a context manager that starts its server on free 127.0.0.1 ports and
stops it, with everything it forked, on the way out.
"""

from services.aws import MotoServer
from services.errors import (
    ServiceCommandError,
    ServiceError,
    ServiceNotInstalledError,
    ServiceStartError,
)
from services.ports import free_port
from services.postgres import PostgresCluster
from services.stack import Stack, install_signal_handlers
from services.temporal import TemporalDevServer

__all__ = [
    "MotoServer",
    "PostgresCluster",
    "ServiceCommandError",
    "ServiceError",
    "ServiceNotInstalledError",
    "ServiceStartError",
    "Stack",
    "TemporalDevServer",
    "free_port",
    "install_signal_handlers",
]
