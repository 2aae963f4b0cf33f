"""The one decoder of JSON request bodies: bounded nesting, encodable strings, finite numbers (pure).

Everything past it (marshmallow, Redis, the job store, the workers) may assume what it checks: a body
deeper than MAX_JSON_DEPTH would exhaust the parser's or a later walker's recursion, a lone surrogate
("\\ud800" as a JSON escape) is not text and cannot be encoded to UTF-8 for Redis, and NaN or a number that
overflows a float is not JSON.
"""

from __future__ import annotations

import json
import math
import re
import sys
from itertools import accumulate
from typing import Any

from core.errors import ValidationFailed

MAX_JSON_DEPTH = 64
"""Arrays and objects nest at most this many levels (the body's own object is level 1)."""

# A JSON string: an unescaped quote to the next one, a backslash escaping any character (DOTALL for a
# backslash before a raw newline). An unterminated string runs to the end of the text: every match attempt
# succeeds, so the scan stays linear (a pattern that can fail retries from every later quote: quadratic).
# Removing strings leaves only structure, numbers and literals behind.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Text strictly decoded from UTF-8 holds no surrogate; only a \uD800-\uDFFF escape can make one (a valid pair
# too, so a match only means: look closer).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text, counted without parsing it (linear, no recursion).

    For malformed text it may over-count (a 400 either way), never under-count what a parser would reach.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(literal: str) -> int:
    # Python refuses to convert more digits than this (a DoS guard of its own), with a message about sys.
    if len(literal.lstrip("-")) > sys.get_int_max_str_digits() > 0:
        raise ValueError(f"a number has more than {sys.get_int_max_str_digits()} digits")
    return int(literal)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"the number {literal[:40]} is out of range")
    return value


def _printable(text: str) -> str:
    """text with lone surrogates shown as \\udXXX escapes, so a message can quote it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _first_unencodable(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) in value that is not encodable to UTF-8, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return where
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{_printable(key)}"
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    return child_path
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def decode_json_body(raw: bytes) -> dict[str, Any]:
    """The body's JSON object, or ValidationFailed (400) saying what is wrong and naming the field."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the body is not UTF-8 (byte {exc.start})",
                               details={"position": exc.start}) from None
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValidationFailed(f"JSON nesting deeper than {MAX_JSON_DEPTH} levels",
                               details={"maxDepth": MAX_JSON_DEPTH, "depth": depth})
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                               details={"line": exc.lineno, "column": exc.colno}) from None
    except ValueError as exc:  # a constant or number we refuse
        raise ValidationFailed(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    if not _SURROGATE_ESCAPE.search(text):
        return body
    for field, value in body.items():
        try:  # at C speed; the walk below only names the place
            json.dumps({field: value}, ensure_ascii=False).encode("utf-8")
            continue
        except UnicodeEncodeError:
            pass
        where = _first_unencodable({field: value}, "")
        if where is not None:
            name = _printable(field)
            raise ValidationFailed(
                f"the string at {where[1:]} is not valid Unicode (a lone surrogate escape such as \\ud800); "
                "send text encodable as UTF-8",
                details={"fields": {name: [f"not valid Unicode at {where[1:]}"]}})
    return body
