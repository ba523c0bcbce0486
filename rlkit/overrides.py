"""Parse `key=value` words in Hydra's override style, safely (no eval).

Values: ints, floats (1e-4), bools (true/false), null, lists ([64,64], nested), quoted or bare strings.
"""

from __future__ import annotations

import re
from typing import Any

from rlkit.errors import UserError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_INT = re.compile(r"^[+-]?\d[\d_]*$")
_FLOAT = re.compile(r"^[+-]?(\d[\d_]*\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$", re.IGNORECASE)


def parse_words(words: list[str]) -> dict[str, Any]:
    """Turn ['lr=1e-4', 'net.hidden=[64,64]'] into {'lr': 0.0001, 'net.hidden': [64, 64]} (keys stay dotted)."""
    out: dict[str, Any] = {}
    for word in words:
        key, value = parse_word(word)
        if key in out:
            raise UserError(f"'{key}' is given twice; keep one of the two values")
        out[key] = value
    return out


def parse_word(word: str) -> tuple[str, Any]:
    """One `key=value` word -> (key, parsed value); a malformed word is a UserError that shows the form."""
    if "=" not in word:
        raise UserError(f"malformed override '{word}': expected key=value, e.g. seed=1 or env=cartpole")
    key, raw = word.split("=", 1)
    if not _KEY.match(key):
        raise UserError(f"malformed override '{word}': '{key}' is not a key; keys look like lr or net.hidden")
    if raw.startswith("="):
        raise UserError(f"malformed override '{word}': use a single '=', e.g. {key}{raw[1:] and '=' + raw[1:]}")
    try:
        return key, parse_value(raw)
    except ValueError as e:
        raise UserError(f"malformed override '{word}': {e}") from None


def parse_value(raw: str) -> Any:
    """Parse one value string; raises ValueError with a short reason when it cannot."""
    value, rest = _parse(raw.strip(), 0)
    if rest != len(raw.strip()):
        raise ValueError(f"unexpected text after position {rest}")
    return value


def _parse(s: str, i: int, in_list: bool = False) -> tuple[Any, int]:
    if i < len(s) and s[i] == "[":
        items: list[Any] = []
        i += 1
        if i < len(s) and s[i] == "]":
            return items, i + 1
        while True:
            item, i = _parse(s, _skip_ws(s, i), in_list=True)
            items.append(item)
            i = _skip_ws(s, i)
            if i >= len(s):
                raise ValueError("list is missing its closing ']'")
            if s[i] == "]":
                return items, i + 1
            if s[i] != ",":
                raise ValueError(f"expected ',' or ']' in list, got '{s[i]}'")
            i += 1
    if i < len(s) and s[i] in "'\"":
        end = s.find(s[i], i + 1)
        if end < 0:
            raise ValueError("string is missing its closing quote")
        return s[i + 1 : end], end + 1
    j = i
    stops = ",[] " if in_list else ",[]"  # inside a list, a space ends a bare item ([1 2] is an error)
    while j < len(s) and s[j] not in stops:
        j += 1
    return _scalar(s[i:j].strip()), j


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] == " ":
        i += 1
    return i


def _scalar(tok: str) -> Any:
    low = tok.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("null", "none", "~"):
        return None
    if _INT.match(tok):
        return int(tok.replace("_", ""))
    if _FLOAT.match(tok):
        return float(tok.replace("_", ""))
    return tok
