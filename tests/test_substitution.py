"""Substitution of secret values for key names, and its errors."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from credentials.errors import KeyNameError, SecretFormatError
from credentials.substitution import key_names, substitute

SECRET = {
    "postgres_user": "extractor",
    "postgres_password": "s3cr3t-VALUE",
    "port": 5432,
    "db": {"password": "nested-VALUE", "user": "nested_user"},
    "db.password": "literal-dot-VALUE",
}


def test_values_replace_the_key_names_and_hidden_ones_stay_wrapped():
    values = substitute(
        SECRET,
        {"username": "postgres_user", "password": "postgres_password"},
        secret_label="'s'",
    )
    assert values["username"] == "extractor"
    # A hidden value stays a SecretStr, so a local holding it shows a mask.
    assert isinstance(values["password"], SecretStr)
    assert values["password"].get_secret_value() == "s3cr3t-VALUE"
    assert "s3cr3t-VALUE" not in repr(values)


def test_numbers_are_read_as_strings():
    assert substitute(SECRET, {"port": "port"}, secret_label="'s'") == {"port": "5432"}


def test_nested_path_and_literal_dotted_key_takes_precedence():
    assert substitute(SECRET, {"username": "db.user"}, secret_label="'s'") == {
        "username": "nested_user"
    }
    assert substitute(SECRET, {"password": "db.password"}, secret_label="'s'") == {
        "password": SecretStr("literal-dot-VALUE")
    }


def test_missing_key_lists_the_key_names_never_the_values():
    with pytest.raises(KeyNameError) as caught:
        substitute(
            SECRET,
            {"username": "username", "password": "postgres_password"},
            secret_label="'my-secret'",
        )
    message = str(caught.value)
    assert "the username key name 'username' is not in the secret" in message
    assert "'postgres_user'" in message and "'postgres_password'" in message
    for value in ("extractor", "s3cr3t-VALUE", "nested-VALUE", "literal-dot-VALUE"):
        assert value not in message


def test_near_match_is_pointed_out():
    with pytest.raises(KeyNameError, match="did you mean 'postgres_user'"):
        substitute(SECRET, {"username": " Postgres_User"}, secret_label="'s'")


def test_a_password_typed_where_its_key_name_belongs_is_not_repeated():
    with pytest.raises(KeyNameError) as caught:
        substitute(SECRET, {"password": "hunter2-typed-in"}, secret_label="'s'")
    message = str(caught.value)
    assert "hunter2-typed-in" not in message
    assert "the password key name you entered (16 characters)" in message


def test_a_key_that_holds_an_object_is_a_format_error():
    with pytest.raises(SecretFormatError, match="holds a dict"):
        substitute(SECRET, {"password": "db"}, secret_label="'s'")


def test_key_names_lists_nested_paths():
    assert key_names({"a": 1, "b": {"c": 2}}) == ["a", "b", "b.c"]


def test_a_small_typo_in_a_key_name_is_pointed_out():
    with pytest.raises(KeyNameError, match="did you mean 'postgres_password'"):
        substitute(SECRET, {"password": "postgres_pasword"}, secret_label="'s'")
