"""Errors raised while starting, using or stopping the embedded services."""


class ServiceError(RuntimeError):
    """Base class for every failure of an embedded service."""


class ServiceNotInstalledError(ServiceError):
    """A program that a service needs is not on this machine."""


class ServiceStartError(ServiceError):
    """A service did not become ready; the message ends with its log tail."""


class ServiceCommandError(ServiceError):
    """A command run against a started service failed."""
