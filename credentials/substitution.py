"""Put secret values in place of the key names a connection description holds."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from credentials.errors import KeyNameError, SecretFormatError
from credentials.providers.base import SecretValue


def _near_match(wanted: str, available: list[str]) -> str | None:
    """A key name that differs only in case or spaces, or by a small typo."""
    folded = wanted.strip().casefold()
    for name in available:
        if name.strip().casefold() == folded:
            return name
    close = difflib.get_close_matches(
        folded, [n.casefold() for n in available], n=1, cutoff=0.85
    )
    if close:
        return next(n for n in available if n.casefold() == close[0])
    return None


def lookup(values: Mapping[str, Any], key_name: str) -> tuple[bool, Any]:
    """(found, value) of a key name: a literal key first, then a dotted path."""
    # A literal key that contains a dot wins over the path it spells.
    if key_name in values:
        return True, values[key_name]
    node: Any = values
    for part in key_name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def key_names(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every key name in the secret, nested ones as dotted paths."""
    names: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        names.append(path)
        if isinstance(value, Mapping):
            names.extend(key_names(value, prefix=f"{path}."))
    return names


def _mapping(values: Mapping[str, Any] | SecretValue) -> Mapping[str, Any]:
    return values.values if isinstance(values, SecretValue) else values


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def substitute(
    values: Mapping[str, Any] | SecretValue,
    references: Mapping[str, str | SecretStr],
    *,
    secret_label: str,
    hidden_fields: frozenset[str] = frozenset({"password"}),
) -> dict[str, Any]:
    """Map each field to the value its key name points at in the secret.

    `references` maps a field (username, password, ...) to a key name. The
    value of a hidden field comes back as a `SecretStr`, the others as `str`.
    The error for a missing key name lists the secret's key names, never its
    values, and does not repeat the reference of a hidden field: a password
    typed where its key name belongs must not end up in an error message.
    """
    # No local here ever holds a hidden value unwrapped, nor the secret's
    # mapping: a traceback rendered with locals (Sentry, rich) shows them all.
    resolved: dict[str, Any] = {}
    missing: list[tuple[str, str | SecretStr]] = []
    for field, key_name in references.items():
        found, value = lookup(_mapping(values), _text(key_name))
        if not found:
            missing.append((field, key_name))
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            kind, value = type(value).__name__, None
            raise SecretFormatError(
                f"key {_text(key_name)!r} of secret {secret_label} (used for the "
                f"{field}) holds a {kind}, not a string or a number: point the key "
                "name at a string value"
            )
        if field in hidden_fields:
            value = SecretStr(str(value))
        resolved[field] = value if isinstance(value, SecretStr) else str(value)

    if missing:
        available = key_names(_mapping(values))
        parts = []
        for field, key_name in missing:
            shown = (
                f"the {field} key name you entered ({len(_text(key_name))} characters)"
                if field in hidden_fields
                else f"the {field} key name {_text(key_name)!r}"
            )
            hint = _near_match(_text(key_name), available)
            near = f" (did you mean {hint!r}? key names match exactly)" if hint else ""
            parts.append(f"{shown} is not in the secret{near}")
        raise KeyNameError(
            f"{'; '.join(parts)}. Secret {secret_label} has the key names: "
            f"{', '.join(repr(n) for n in available) or '(none)'}. Enter the key "
            "names, not the values, in the username and password fields"
        )
    return resolved
