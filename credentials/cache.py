"""A worker-wide, short-lived cache of secret reads, shared by concurrent activities.

Entries are keyed by secret, region, endpoint and version (a version id or a
stage). Concurrent reads of one key wait for a single call to the secret store
(single-flight), so a thousand activities that start together make one call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from credentials.arn import locate
from credentials.models import ConnectionDescription, CredentialSource
from credentials.providers.base import Provider, SecretValue

# Short by default: a value read for one step is reused by the steps and
# workflows starting in the next few seconds, and a rotated secret is seen soon
# even without a rejected login.
DEFAULT_TTL_SECONDS = 10.0
TTL_ENV = "CREDFLOW_SECRET_CACHE_SECONDS"

# Bounds a joiner's wait on a load that hangs; the store client times out sooner.
_JOIN_TIMEOUT_SECONDS = 120.0

T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    """Where a secret version lives; `version` is `id:<uuid>` or `stage:<name>`."""

    secret_id: str
    region: str
    endpoint_url: str | None
    version: str
    # Who read it and how it was parsed: a value read by one AWS identity (or
    # in one secret format) must never answer a read made by another.
    scope: str = ""

    @classmethod
    def for_read(
        cls,
        secret_id: str,
        region: str,
        endpoint_url: str | None,
        *,
        version_id: str | None,
        version_stage: str | None,
        scope: str = "",
    ) -> CacheKey:
        version = f"id:{version_id}" if version_id else f"stage:{version_stage}"
        return cls(secret_id, region, endpoint_url, version, scope)

    def with_version(self, version: str) -> CacheKey:
        return dataclasses.replace(self, version=version)


def read_scope(connection: ConnectionDescription) -> str:
    """The identity and format part of a cache key; holds no secret value."""
    access = connection.aws_access
    secret_key = (
        access.secret_access_key.get_secret_value()
        if access and access.secret_access_key
        else ""
    )
    parts = [
        connection.secret_format,
        access.mode if access else "",
        (access.profile or "") if access else "",
        (access.access_key_id or "") if access else "",
        # A digest tells two keys apart without keeping either in the key.
        hashlib.sha256(secret_key.encode()).hexdigest()[:16] if secret_key else "",
        (access.role_arn or "") if access else "",
        (access.external_id or "") if access else "",
        (access.sts_endpoint_url or "") if access else "",
    ]
    return "|".join(parts)


@dataclass
class _Flight:
    """One call to the secret store that other callers of the same key wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    value: object = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Entry:
    value: SecretValue
    expires: float


class SecretCache:
    """Secret values for `ttl_seconds`; a lifetime of 0 turns caching off.

    Single-flight holds whatever the lifetime: callers that arrive while a read
    of their key is in flight share its answer (or its error).
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        single_flight: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.single_flight_enabled = single_flight
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[CacheKey, _Entry] = {}
        self._flights: dict[object, _Flight] = {}

    def get(
        self, key: CacheKey, load: Callable[[], SecretValue]
    ) -> tuple[SecretValue, bool]:
        """The cached value of `key`, or `load()`'s; True when this call loaded it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > self._clock():
                return entry.value, False
        value, loaded = self.single_flight(key, load)
        if loaded and self.ttl_seconds > 0:
            self.put(key, value)
        return value, loaded

    def put(self, key: CacheKey, value: SecretValue) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._prune()
            self._entries[key] = _Entry(value, self._clock() + self.ttl_seconds)

    def forget_versions(self, version_ids: Collection[str]) -> int:
        """Drop every entry holding one of `version_ids` (a login rejected it)."""
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.value.version_id in version_ids
            ]
            for key in stale:
                del self._entries[key]
        return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def single_flight(self, key: object, load: Callable[[], T]) -> tuple[T, bool]:
        """Run `load` once for every caller that asks for `key` while it runs.

        Nothing is kept afterwards: a caller arriving after the call ended
        makes a call of its own.
        """
        if not self.single_flight_enabled:
            return load(), True
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None

        if not leader:
            if not flight.done.wait(_JOIN_TIMEOUT_SECONDS):
                return load(), True
            if flight.error is not None:
                raise flight.error
            return flight.value, False  # type: ignore[return-value]

        try:
            flight.value = load()
            return flight.value, True  # type: ignore[return-value]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _prune(self) -> None:
        # Called under the lock on every put: expired values leave memory soon.
        now = self._clock()
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            del self._entries[key]


@dataclass
class StoreCalls:
    """Calls made to the secret store: GetSecretValue and DescribeSecret."""

    reads: int = 0
    describes: int = 0


class CachedProvider:
    """A provider seen through the cache; counts the store calls it really makes.

    Made per resolution: `calls` then holds what that resolution cost. A read
    that joined another caller's call, or hit the cache, costs nothing.
    """

    def __init__(self, inner: Provider, cache: SecretCache) -> None:
        self.inner = inner
        self.cache = cache
        self.calls = StoreCalls()
        self.from_cache = False

    @property
    def can_describe(self) -> bool:
        return callable(getattr(self.inner, "describe", None))

    def read(
        self,
        connection: ConnectionDescription,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> SecretValue:
        if connection.source == CredentialSource.DIRECT:
            # Typed-in values: nothing to fetch, nothing to cache.
            return self.inner.read(
                connection, version_id=version_id, version_stage=version_stage
            )
        version_id = version_id or connection.version_id
        version_stage = version_stage or connection.version_stage
        if version_id and version_stage:
            # A contradiction the provider reports in its own words.
            return self.inner.read(connection, version_id=version_id)
        if not version_id:
            version_stage = version_stage or "AWSCURRENT"
        location = locate(connection.secret_arn, connection.region)
        key = CacheKey.for_read(
            location.secret_id,
            location.region,
            connection.aws_endpoint_url,
            version_id=version_id,
            version_stage=version_stage,
            scope=read_scope(connection),
        )

        def load() -> SecretValue:
            self.calls.reads += 1
            return self.inner.read(
                connection, version_id=version_id, version_stage=version_stage
            )

        value, loaded = self.cache.get(key, load)
        self.from_cache = not loaded
        if loaded and value.version_id:
            # The same value answers reads by its id and by each of its stages.
            for version in (
                f"id:{value.version_id}",
                *(f"stage:{stage}" for stage in value.version_stages),
            ):
                if version != key.version:
                    self.cache.put(key.with_version(version), value)
        return value

    def stand_in(
        self, connection: ConnectionDescription, *, stage: str, version_id: str
    ) -> None:
        """Answer reads of `stage` with `version_id`'s cached value from now on.

        After the database rejected AWSCURRENT and accepted AWSPENDING, the
        steps that follow log in with AWSPENDING until the entry expires,
        instead of each being rejected once while the rotation finishes.
        """
        location = locate(connection.secret_arn, connection.region)
        by_id = CacheKey(
            location.secret_id,
            location.region,
            connection.aws_endpoint_url,
            f"id:{version_id}",
            read_scope(connection),
        )
        with self.cache._lock:
            entry = self.cache._entries.get(by_id)
        if entry is not None:
            self.cache.put(by_id.with_version(f"stage:{stage}"), entry.value)

    def describe(self, connection: ConnectionDescription) -> Any:
        """DescribeSecret, never cached; callers arriving together share one call."""
        location = locate(connection.secret_arn, connection.region)
        key = ("describe", location.secret_id, location.region, read_scope(connection))

        def load() -> Any:
            self.calls.describes += 1
            return self.inner.describe(connection)  # type: ignore[attr-defined]

        description, _ = self.cache.single_flight(
            (*key, connection.aws_endpoint_url), load
        )
        return description


# Limitation: the cache and its single-flight are per worker process; N workers
# that share a secret make up to N reads of it per cache lifetime.
_shared: SecretCache | None = None
_shared_lock = threading.Lock()


def cache_seconds_from_env(environ: Mapping[str, str] | None = None) -> float:
    """CREDFLOW_SECRET_CACHE_SECONDS, checked: the worker refuses a bad value."""
    env = os.environ if environ is None else environ
    text = env.get(TTL_ENV, str(DEFAULT_TTL_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ValueError(
            f"{TTL_ENV} must be a number of seconds from 0 (no cache) to 3600, "
            f"not {text!r}"
        )
    return seconds


def shared_cache() -> SecretCache:
    """The worker's cache; its lifetime comes from CREDFLOW_SECRET_CACHE_SECONDS."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SecretCache(cache_seconds_from_env())
        return _shared


def configure_shared_cache(
    ttl_seconds: float, *, single_flight: bool = True
) -> SecretCache:
    """Replace the worker's cache with an empty one of this lifetime."""
    global _shared
    with _shared_lock:
        _shared = SecretCache(max(ttl_seconds, 0.0), single_flight=single_flight)
        return _shared
