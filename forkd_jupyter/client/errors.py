"""Typed SDK exceptions, each carrying the daemon's problem document."""

from __future__ import annotations


class ForkdError(Exception):
    """An error answered by the daemon: ``problem`` is its problem+json
    document (``type``, ``title``, ``status``, ``detail`` and extensions)."""

    def __init__(self, problem: dict) -> None:
        self.problem = problem
        self.status = int(problem.get("status", 0))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.type = str(problem.get("type", ""))
        super().__init__(self.detail or self.title)


class BadRequest(ForkdError):
    """400: a wrong argument."""


class Unauthorized(ForkdError):
    """401: the token is missing or wrong."""


class NotFound(ForkdError):
    """404: no such sandbox, snapshot or file."""


class Conflict(ForkdError):
    """409: the snapshot has dependents, the sandbox is not running or is
    busy, the name or tag is taken, or the path is in the way."""

    @property
    def dependents(self) -> list[str]:
        return list(self.problem.get("dependents", []))


class TooLarge(ForkdError):
    """413: the body is over the route's limit, or does not fit the layer."""


class Unavailable(ForkdError):
    """503: too many branches in flight, or KVM unusable here."""


class DaemonUnavailable(ForkdError):
    """The daemon could not be reached or started (no HTTP answer at all)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            {
                "type": "urn:forkd-jupyter:problem:daemon-unavailable",
                "title": "Daemon unavailable",
                "status": 0,
                "detail": detail,
            }
        )


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    503: Unavailable,
}


def from_problem(problem: dict) -> ForkdError:
    return _BY_STATUS.get(int(problem.get("status", 0)), ForkdError)(problem)
