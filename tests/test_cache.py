"""The secret cache: lifetime, single-flight, forgetting rejected versions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from credentials.cache import CacheKey, SecretCache
from credentials.errors import SecretStoreThrottledError
from credentials.providers.base import SecretValue
from credentials.rotation import CURRENT, PENDING, candidate_stages, next_version

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
    assert next_version(versions, ["v1", "v2"]) is None
    # The previous version is never tried: a rotation retires it.
    assert next_version({"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]}, ["v1"]) is None


def test_a_pinned_stage_other_than_current_is_the_only_candidate():
    assert candidate_stages(None) == (CURRENT, PENDING)
    assert candidate_stages("AWSCURRENT") == (CURRENT, PENDING)
    assert candidate_stages("blue") == ("blue",)
