"""The key ring seals secret fields; only a ring holding the key unseals them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from credentials.errors import KeyRingError, SealingError
from credentials.models import ResolvedCredential
from credentials.sealing import (
    KeyRing,
    generate_key_text,
    install_key_ring,
    load_key_ring,
)

PASSWORD = "p@ss:w/rd#%?&='\""


def _credential() -> ResolvedCredential:
    return ResolvedCredential(
        source="aws-secrets-manager",
        auth_type="basic",
        username="extractor",
        password=SecretStr(PASSWORD),
        host="127.0.0.1",
        port=5432,
        database="pagila",
        version_id="v1",
        read_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def ring():
    ring = KeyRing.generate("k1")
    install_key_ring(ring)
    yield ring
    install_key_ring(None)


def test_json_seals_the_password_and_validation_unseals_it(ring):
    text = _credential().model_dump_json()

    assert PASSWORD not in text
    assert base64.b64encode(PASSWORD.encode()).decode() not in text
    assert '"password":"sealed:v1:k1:' in text
    back = ResolvedCredential.model_validate_json(text)
    assert back.password.get_secret_value() == PASSWORD
    assert back.version_id == "v1"


def test_repr_and_str_mask_the_password(ring):
    credential = _credential()

    assert PASSWORD not in repr(credential)
    assert PASSWORD not in str(credential)
    assert "**********" in repr(credential)


def test_serializing_without_a_key_ring_refuses_rather_than_leaks():
    install_key_ring(None)
    with pytest.raises(Exception, match="no key ring is installed") as caught:
        _credential().model_dump_json()
    assert PASSWORD not in str(caught.value)


def test_older_key_still_unseals_after_rotation():
    k1, k2 = generate_key_text("k1"), generate_key_text("k2")
    install_key_ring(KeyRing.parse(k1))
    sealed_by_k1 = _credential().model_dump_json()

    rotated = KeyRing.parse(f"{k2},{k1}")
    install_key_ring(None)
    install_key_ring(rotated)

    assert rotated.active == "k2"
    back = ResolvedCredential.model_validate_json(sealed_by_k1)
    assert back.password.get_secret_value() == PASSWORD
    assert '"password":"sealed:v1:k2:' in _credential().model_dump_json()
    install_key_ring(None)


def test_a_ring_without_the_sealing_key_says_which_key_is_missing():
    install_key_ring(KeyRing.generate("k1"))
    sealed = _credential().model_dump_json()
    install_key_ring(None)
    install_key_ring(KeyRing.generate("k2"))
    with pytest.raises(Exception, match="encrypted with key .k1.") as caught:
        ResolvedCredential.model_validate_json(sealed)
    assert PASSWORD not in str(caught.value)
    install_key_ring(None)


def test_a_different_key_with_the_same_id_does_not_decrypt():
    install_key_ring(KeyRing.generate("k1"))
    sealed = _credential().model_dump_json()
    install_key_ring(None)
    install_key_ring(KeyRing.generate("k1"))
    with pytest.raises(Exception, match="does not decrypt"):
        ResolvedCredential.model_validate_json(sealed)
    install_key_ring(None)


def test_key_ring_parsing_errors_never_quote_the_key():
    with pytest.raises(KeyRingError, match="not valid base64") as caught:
        KeyRing.parse("k1:not*base64*at*all")
    assert "not*base64" not in str(caught.value)
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing.parse("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(KeyRingError, match="no id"):
        KeyRing.parse(base64.b64encode(b"x" * 32).decode())


def test_load_key_ring_from_env_and_file(tmp_path):
    text = f"{generate_key_text('new')},{generate_key_text('old')}"
    ring = load_key_ring({"CREDFLOW_KEYS": text})
    assert ring.active == "new"
    assert ring.key_ids == ["new", "old"]

    path = tmp_path / "keys"
    path.write_text(text)
    assert load_key_ring({"CREDFLOW_KEYS_FILE": str(path)}).key_ids == ["new", "old"]

    with pytest.raises(KeyRingError, match="no key ring"):
        load_key_ring({})
    with pytest.raises(KeyRingError, match="cannot read the key ring file"):
        load_key_ring({"CREDFLOW_KEYS_FILE": str(tmp_path / "missing")})


def test_access_token_proves_holding_a_key_without_revealing_it():
    k1, k2 = generate_key_text("k1"), generate_key_text("k2")
    ring = KeyRing.parse(f"{k2},{k1}")
    old_only = KeyRing.parse(k1)

    assert ring.accepts_token(old_only.access_token())
    assert ring.accepts_token(ring.access_token("k2"))
    assert not KeyRing.parse(generate_key_text("k1")).accepts_token(
        old_only.access_token()
    )
    assert k1.split(":", 1)[1] not in old_only.access_token()


def test_two_installed_rings_share_a_process():
    a, b = KeyRing.generate("a"), KeyRing.generate("b")
    install_key_ring(None)
    install_key_ring(a)
    sealed_by_a = _credential().model_dump_json()
    install_key_ring(b)

    assert '"password":"sealed:v1:b:' in _credential().model_dump_json()
    back = ResolvedCredential.model_validate_json(sealed_by_a)
    assert back.password.get_secret_value() == PASSWORD
    with pytest.raises(SealingError):
        a.unseal(
            _credential().model_dump_json().split('"password":"')[1].split('"')[0],
            purpose="credflow/secret-field/v1/resolved.password",
        )
    install_key_ring(None)


def test_a_key_id_given_twice_is_refused():
    with pytest.raises(KeyRingError, match="'k1' appears twice"):
        KeyRing.parse(f"{generate_key_text('k1')},{generate_key_text('k1')}")


def test_a_seal_does_not_open_in_another_field(ring):
    from credentials.models import ConnectionDescription

    sealed = _credential().model_dump(mode="json")["password"]
    assert sealed.startswith("sealed:v1:")

    # A resolved password copied into a typed-in password field stays shut.
    with pytest.raises(Exception, match="does not decrypt") as caught:
        ConnectionDescription(source="direct", username="u", password=sealed)
    assert PASSWORD not in str(caught.value)
    assert (
        ResolvedCredential.model_validate_json(
            _credential().model_dump_json()
        ).password.get_secret_value()
        == PASSWORD
    )


def test_a_key_ring_with_swapped_halves_does_not_print_the_key():
    key = generate_key_text("k1").split(":", 1)[1]
    with pytest.raises(KeyRingError, match="does not start with a key id") as caught:
        KeyRing.parse(f"{key}:k1")
    assert key not in str(caught.value)
    assert key[:12] not in str(caught.value)


def test_a_password_that_only_looks_sealed_is_a_password(ring):
    from credentials.models import ConnectionDescription

    typed = "sealed:v1:MY-REAL-PASSWORD-part:rest"
    connection = ConnectionDescription(source="direct", username="u", password=typed)
    assert connection.password.get_secret_value() == typed
    back = ConnectionDescription.model_validate_json(connection.model_dump_json())
    assert back.password.get_secret_value() == typed
