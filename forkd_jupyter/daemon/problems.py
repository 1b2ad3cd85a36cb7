"""Problem documents (RFC 9457), the body of every error the daemon sends.

Invariant: every problem type the daemon can send is in ``KINDS``, with one
status and one title (docs/rest-api.md lists the same table), so the same
failure always reads the same way whichever layer found it."""

from __future__ import annotations

TYPE_PREFIX = "urn:forkd-jupyter:problem:"
CONTENT_TYPE = "application/problem+json"

# kind -> (status, title)
KINDS: dict[str, tuple[int, str]] = {
    "bad-request": (400, "Bad request"),
    "unauthorized": (401, "Unauthorized"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "name-taken": (409, "Name or tag already in use"),
    "sandbox-dead": (409, "Sandbox is not running"),
    "sandbox-busy": (409, "Sandbox is busy"),
    "snapshot-busy": (409, "Snapshot has dependents"),
    "path-conflict": (409, "Path conflict"),
    "run-not-waiting": (409, "Run is not waiting for input"),
    "process-not-running": (409, "Process is not running"),
    "too-large": (413, "Payload too large"),
    "uri-too-long": (414, "URI too long"),
    "process-limit": (429, "Too many managed processes"),
    "internal": (500, "Internal error"),
    "spawn-failed": (500, "Sandbox could not start"),
    "not-supported": (501, "Not supported by this build"),
    "too-many-branches": (503, "Too many branches in flight"),
    "kvm-unavailable": (503, "KVM is not usable on this machine"),
    "sandbox-limit": (503, "Sandbox limit reached"),
    "insufficient-memory": (503, "Not enough host memory"),
    "unavailable": (503, "Unavailable"),
    "daemon-stopping": (503, "Daemon is stopping"),
    "timeout": (504, "Timed out"),
}

KIND_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    414: "uri-too-long",
    503: "unavailable",
    504: "timeout",
}


def problem(kind: str, status: int, detail: str, **extra) -> dict:
    known_status, title = KINDS.get(kind, (status, KINDS["internal"][1]))
    return {
        "type": TYPE_PREFIX + kind,
        "title": title,
        "status": known_status if kind in KINDS else status,
        "detail": detail,
        **extra,
    }
