"""Strict reading of request bodies and query arguments.

Invariants: every value a route uses passes through here before the route
has any effect; a bad value is an ``ApiError`` 400 whose problem document
names the field (``field``) and says what is allowed. JSON is RFC 8259 only:
``NaN``, ``Infinity`` and numbers that overflow a double are refused, and
unknown body fields are refused (a misspelt option never goes unnoticed)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import ApiError

MAX_NAME = 64
MAX_PATH = 4096
MAX_PATH_DEPTH = 128
MAX_TIMEOUT_S = 86400.0
# Names and tags never look like ids, so ``{id}`` in a path is unambiguous.
ID_SHAPE = re.compile(r"^(sb|snap|run)-[0-9]+$")
NAME_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def bad(field: str, detail: str) -> ApiError:
    return ApiError(400, f"{field}: {detail}", field=field)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} does not fit a double")
    return value


def parse_body(raw: bytes) -> dict:
    """The JSON object of a request body ({} when empty)."""
    if not raw:
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        detail = str(e) if not isinstance(e, RecursionError) else "nested too deeply"
        raise ApiError(400, f"the body is not valid JSON: {detail}", field="body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", field="body")
    return body


MAX_CHECKPOINT_LINE = 200


class Body:
    """The fields of one JSON body; ``done`` refuses any field not read."""

    def __init__(self, raw: bytes) -> None:
        self.data = parse_body(raw)
        self._read: set[str] = set()

    def _get(self, name: str) -> Any:
        self._read.add(name)
        return self.data.get(name)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise bad(unknown[0], "unknown field")

    def checked_elsewhere(self, name: str) -> Any:
        """The field as sent, for the controller to check (it answers a 400
        naming the field, before any side effect)."""
        return self._get(name)

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise bad(name, f"must be an integer from {lo} to {hi}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise bad(name, "must be true or false")
        return value

    def text(self, name: str, required: bool = False, max_len: int | None = None) -> str | None:
        value = self._get(name)
        if value is None:
            if required:
                raise bad(name, "is required")
            return None
        if not isinstance(value, str):
            raise bad(name, "must be a string")
        if max_len is not None and len(value) > max_len:
            raise bad(name, f"must be at most {max_len} characters")
        return value

    def name(self, field: str) -> str | None:
        """A sandbox name or snapshot tag: 1-64 of letters, digits, '.', '_'
        and '-', starting with a letter or digit, and not shaped like an id."""
        value = self.text(field)
        if value is None:
            return None
        return check_name(field, value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        if value not in choices:
            raise bad(name, f"must be one of {', '.join(choices)}")
        return value

    def checkpoint(self, name: str = "checkpoint") -> dict | None:
        """A notebook checkpoint: {"cell": N or null, "line": TEXT, "after":
        N or null}, the cell it precedes (null: the state a checkout left),
        that cell's first line and the cell run last (docs/time-travel.md)."""
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"cell", "line", "after"}:
            raise bad(name, 'must be an object of "cell", "line" and "after"')
        out = {}
        for key in ("cell", "after"):
            n = value.get(key)
            if n is None:
                out[key] = None
                continue
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 1 << 31:
                raise bad(name, f"{key} must be a cell's execution count")
            out[key] = n
        line = value.get("line", "")
        if not isinstance(line, str) or len(line) > MAX_CHECKPOINT_LINE:
            raise bad(name, f"line must be a string of at most {MAX_CHECKPOINT_LINE} characters")
        out["line"] = line
        return out

    def timeout(self, name: str = "timeout") -> float | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(name, "must be a number of seconds")
        if not 0 < value <= MAX_TIMEOUT_S:
            raise bad(name, f"must be more than 0 and at most {MAX_TIMEOUT_S:.0f} seconds")
        return float(value)


def check_name(field: str, value: str) -> str:
    if not 1 <= len(value) <= MAX_NAME or not NAME_SHAPE.match(value):
        raise bad(
            field,
            f"must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with "
            "a letter or digit",
        )
    if ID_SHAPE.match(value):
        raise bad(field, f"{value!r} has the shape of an id (sb-N, snap-N, run-N)")
    return value


def check_path(field: str, value: str) -> str:
    """A guest path as given (before resolving): bounded, without NUL."""
    if not value:
        raise bad(field, "is required")
    if "\x00" in value:
        raise bad(field, "must not contain NUL")
    if len(value.encode(errors="surrogateescape")) > MAX_PATH:
        raise bad(field, f"must be at most {MAX_PATH} bytes")
    if value.count("/") > MAX_PATH_DEPTH:
        raise bad(field, f"must have at most {MAX_PATH_DEPTH} components")
    return value
