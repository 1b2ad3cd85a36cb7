"""Reading server-sent events from an httpx streaming response."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx


def iter_events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(event name, decoded data) for each event, in order."""
    for name, data, _ in iter_events_with_ids(response):
        yield name, data


def iter_events_with_ids(response: httpx.Response) -> Iterator[tuple[str, dict, str | None]]:
    """(event name, decoded data, id or None) for each event, in order."""
    name, data, ident = "message", [], None
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data)), ident
            name, data, ident = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                ident = value
