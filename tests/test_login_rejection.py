"""A rejected login is recognised by its SQLSTATE anywhere in the cause chain."""

from __future__ import annotations

from activities.errors import is_login_rejected


class DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class WrapperError(Exception):
    """An outer type that says nothing about logins, as pools and ORMs raise."""


def test_a_sqlstate_deep_in_the_cause_chain_is_found():
    try:
        try:
            raise DriverError("whatever the server said", sqlstate="28P01")
        except DriverError as inner:
            raise WrapperError("connection failed") from inner
    except WrapperError as outer:
        assert is_login_rejected(outer)


def test_a_sqlstate_in_the_context_of_a_later_error_is_found():
    try:
        try:
            raise DriverError("no", sqlstate="28000")
        except DriverError:
            raise WrapperError("cleanup failed too") from None
    except WrapperError as outer:
        # `from None` hides the context from tracebacks, not from the chain.
        assert is_login_rejected(outer)


def test_other_sqlstates_are_not_login_rejections():
    error = WrapperError("timeout")
    error.__cause__ = DriverError("canceling statement", sqlstate="57014")
    assert not is_login_rejected(error)
    assert not is_login_rejected(WrapperError("password authentication failed"))
