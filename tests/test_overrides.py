"""The key=value grammar: safe value parsing and clear errors for malformed words."""

import pytest

from rlkit.errors import UserError
from rlkit.overrides import parse_value, parse_word, parse_words


@pytest.mark.parametrize(
    "raw, value",
    [
        ("3", 3), ("-2", -2), ("1_000", 1000), ("0.5", 0.5), ("1e-4", 1e-4), ("3.", 3.0), (".5", 0.5),
        ("true", True), ("False", False), ("null", None), ("none", None),
        ("[64,64]", [64, 64]), ("[]", []), ("[1, [2, 3]]", [1, [2, 3]]), ("[relu, 'a b']", ["relu", "a b"]),
        ("cartpole", "cartpole"), ("'42'", "42"), ('"x,y"', "x,y"), ("ALE/Pong-v5", "ALE/Pong-v5"),
        ("__import__('os')", "__import__('os')"),  # never evaluated: it stays a string
    ],
)
def test_values(raw, value):
    assert parse_value(raw) == value
    assert type(parse_value(raw)) is type(value)


def test_dotted_keys_and_words():
    assert parse_words(["net.hidden=[256,256]", "lr=3e-4", "env=my.mod:Env"]) == {
        "net.hidden": [256, 256], "lr": 3e-4, "env": "my.mod:Env"}
    assert parse_word("env=path/to/file.py:Cls") == ("env", "path/to/file.py:Cls")


@pytest.mark.parametrize("word, fragment", [
    ("lr==3", "single '='"), ("lr", "expected key=value"), ("=3", "is not a key"), ("1lr=3", "is not a key"),
    ("net.hidden=[64,64", "closing ']'"), ("x='abc", "closing quote"), ("x=[1 2]", "expected ','"),
])
def test_malformed(word, fragment):
    with pytest.raises(UserError, match="malformed override") as e:
        parse_words([word])
    assert fragment in str(e.value)


def test_duplicate_key():
    with pytest.raises(UserError, match="given twice"):
        parse_words(["lr=1", "lr=2"])
