"""The controller's failures, each with the problem type the daemon answers
with. Domain code raises these; only the daemon turns them into HTTP."""

from __future__ import annotations


class ControllerError(Exception):
    """Base: ``kind`` is the problem type's last part, ``status`` its HTTP
    status, ``extra`` members added to the problem document."""

    kind = "internal"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict:
        """The problem document (RFC 9457) of this failure."""
        return {
            "type": f"urn:forkd-jupyter:problem:{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(ControllerError):
    kind, status, title = "bad-request", 400, "Bad request"


class NotFound(ControllerError):
    kind, status, title = "not-found", 404, "Not found"


class SnapshotBusy(ControllerError):
    kind, status, title = "snapshot-busy", 409, "Snapshot has dependents"


class SandboxDead(ControllerError):
    kind, status, title = "sandbox-dead", 409, "Sandbox is not running"


class TooManyBranches(ControllerError):
    kind, status, title = "too-many-branches", 503, "Too many branches in flight"


class SandboxLimit(ControllerError):
    kind, status, title = "sandbox-limit", 503, "Sandbox limit reached"


class InsufficientMemory(ControllerError):
    kind, status, title = "insufficient-memory", 503, "Not enough host memory"


class KvmUnavailable(ControllerError):
    kind, status, title = "kvm-unavailable", 503, "KVM is not usable on this machine"


class SpawnFailed(ControllerError):
    kind, status, title = "spawn-failed", 500, "Sandbox could not start"


class Timeout(ControllerError):
    kind, status, title = "timeout", 504, "Timed out"


class NotSupported(ControllerError):
    kind, status, title = "not-supported", 501, "Not supported by this build"


class SandboxBusy(ControllerError):
    kind, status, title = "sandbox-busy", 409, "Sandbox is busy"


class ProcessLimit(ControllerError):
    kind, status, title = "process-limit", 429, "Too many managed processes"


class ProcessNotRunning(ControllerError):
    kind, status, title = "process-not-running", 409, "Process is not running"


class NameTaken(ControllerError):
    kind, status, title = "name-taken", 409, "Name or tag already in use"


class RunNotWaiting(ControllerError):
    kind, status, title = "run-not-waiting", 409, "Run is not waiting for input"


class RemoteSandbox(ControllerError):
    kind, status, title = "remote-sandbox", 409, "Sandbox runs on another node"


class ClusterUnavailable(ControllerError):
    kind, status, title = "cluster-unavailable", 503, "Cluster not reachable"
