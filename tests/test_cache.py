"""The secret cache: lifetime, single-flight, forgetting rejected versions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from credentials.cache import CacheKey, SecretCache
from credentials.errors import SecretStoreThrottledError
from credentials.providers.base import SecretValue
from credentials.rotation import (
    CURRENT,
    PENDING,
    PREVIOUS,
    candidate_stages,
    next_version,
)

KEY = CacheKey("db-login", "us-east-1", None, "stage:AWSCURRENT")


def value(version_id: str = "v1") -> SecretValue:
    return SecretValue(
        values={"user": "app", "password": "pw"},
        label="'db-login'",
        version_id=version_id,
        version_stages=(CURRENT,),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_its_lifetime_ends():
    clock = Clock()
    cache = SecretCache(10, clock=clock)
    loads = []

    def load() -> SecretValue:
        loads.append(1)
        return value(f"v{len(loads)}")

    assert cache.get(KEY, load) == (value("v1"), True)
    clock.now += 9.9
    assert cache.get(KEY, load) == (value("v1"), False)
    clock.now += 0.2
    assert cache.get(KEY, load) == (value("v2"), True)
    assert len(loads) == 2


def test_a_lifetime_of_zero_reads_every_time():
    cache = SecretCache(0)
    calls = []
    for _ in range(3):
        cache.get(KEY, lambda: calls.append(1) or value())
    assert len(calls) == 3


def test_a_thousand_concurrent_reads_make_one_call():
    cache = SecretCache(10)
    calls = []
    release = threading.Event()

    def slow_load() -> SecretValue:
        calls.append(1)
        # Hold the call open until every caller has arrived and is waiting.
        release.wait(5)
        return value()

    with ThreadPoolExecutor(max_workers=64) as pool:
        futures = [pool.submit(cache.get, KEY, slow_load) for _ in range(1000)]
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        results = [f.result(timeout=10) for f in futures]

    assert len(calls) == 1
    assert sum(loaded for _, loaded in results) == 1
    assert {v.version_id for v, _ in results} == {"v1"}


def test_callers_that_joined_a_failed_call_get_its_error_and_nothing_is_kept():
    cache = SecretCache(10)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def failing_load() -> SecretValue:
        calls.append(1)
        started.set()
        release.wait(5)
        raise SecretStoreThrottledError("throttled")

    with ThreadPoolExecutor(max_workers=4) as pool:
        leader = pool.submit(cache.get, KEY, failing_load)
        assert started.wait(5)
        joiners = [pool.submit(cache.get, KEY, failing_load) for _ in range(3)]
        time.sleep(0.05)  # let the joiners reach the wait
        release.set()
        for future in (leader, *joiners):
            with pytest.raises(SecretStoreThrottledError):
                future.result(timeout=10)

    assert len(calls) == 1
    assert cache.get(KEY, lambda: value("v2")) == (value("v2"), True)


def test_forgetting_a_rejected_version_drops_it_under_every_key():
    cache = SecretCache(10)
    by_id = CacheKey("db-login", "us-east-1", None, "id:v1")
    cache.put(KEY, value("v1"))
    cache.put(by_id, value("v1"))
    other = CacheKey("db-login", "us-east-1", None, "stage:AWSPENDING")
    cache.put(other, value("v2"))

    assert cache.forget_versions(["v1"]) == 2
    assert cache.get(KEY, lambda: value("v3")) == (value("v3"), True)
    assert cache.get(other, lambda: value("v9")) == (value("v2"), False)


def test_after_a_rejected_current_version_the_pending_one_is_next():
    versions = {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"], "v0": ["AWSPREVIOUS"]}
    assert next_version(versions, ["v1"]).version_id == "v2"
    assert next_version(versions, ["v1"]).stage == PENDING


def test_a_finished_rotation_offers_the_new_current_version_first():
    versions = {"v2": ["AWSCURRENT", "AWSPENDING"], "v1": ["AWSPREVIOUS"]}
    choice = next_version(versions, ["v1"])
    assert (choice.version_id, choice.stage) == ("v2", CURRENT)


def test_a_rejected_version_is_never_offered_again():
    versions = {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"], "v0": ["AWSPREVIOUS"]}
    stages = candidate_stages(None)
    assert next_version(versions, ["v1", "v2"], stages).version_id == "v0"
    assert next_version(versions, ["v1", "v2", "v0"], stages) is None


def test_a_secret_ahead_of_its_database_offers_the_previous_version():
    # Updated in the secret first: the database still has AWSPREVIOUS's password.
    versions = {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]}
    choice = next_version(versions, ["v1"], candidate_stages(None))
    assert (choice.version_id, choice.stage) == ("v0", PREVIOUS)


def test_a_pinned_stage_other_than_current_is_the_only_candidate():
    assert candidate_stages(None) == (CURRENT, PENDING, PREVIOUS)
    assert candidate_stages("AWSCURRENT") == (CURRENT, PENDING, PREVIOUS)
    assert candidate_stages("blue") == ("blue",)


def test_reads_by_different_identities_or_formats_never_share_an_entry():
    from credentials.cache import CachedProvider, read_scope
    from credentials.models import ConnectionDescription

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-login-AbCdEf"
    base = {"secret_arn": arn, "username": "u", "password": "p", "host": "h"}
    default = ConnectionDescription(**base)
    as_role = ConnectionDescription(
        **base,
        aws_access={"mode": "assume_role", "role_arn": "arn:aws:iam::1:role/r"},
    )
    other_key = ConnectionDescription(
        **base,
        aws_access={
            "mode": "static",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "first-secret-key",
        },
    )
    other_key_2 = ConnectionDescription(
        **base,
        aws_access={
            "mode": "static",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "second-secret-key",
        },
    )
    plain = ConnectionDescription(**base, secret_format="plain")
    scopes = {read_scope(c) for c in (default, as_role, other_key, other_key_2, plain)}
    assert len(scopes) == 5
    assert not any("secret-key" in scope for scope in scopes)

    class Store:
        def __init__(self) -> None:
            self.reads = 0

        def read(self, connection, *, version_id=None, version_stage=None):
            self.reads += 1
            return value(f"v{self.reads}")

    store = Store()
    provider = CachedProvider(store, SecretCache(60))
    provider.read(default)
    provider.read(default)
    provider.read(as_role)
    provider.read(plain)
    assert store.reads == 3
