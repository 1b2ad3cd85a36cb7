"""``RemoteSandbox``: a sandbox on another node, standing in for a
``vmm.Sandbox`` in the daemon's branch tree. Cells, interrupts, push/pull
and kill go to the node's agent over Ray; a cell's output streams back as
it is made (a Ray streaming generator). Files, branching and memory
figures are served only for sandboxes of this host.

Invariant: once ``exit_reason`` is set the proxy is dead for good; a lost
node (any Ray actor error) sets it with the reason."""

from __future__ import annotations

from typing import Any

from .. import vmm
from ..controller import errors as E
from ..run_result import RunResult


class RemoteSandbox:
    remote = True  # the branch tree reports exit_reason as is (no "crashed:")

    def __init__(self, link: Any, remote_id: str, record: dict) -> None:
        self.link = link  # hub.NodeLink: node_id, label, agent
        self.remote_id = remote_id
        self.memory_mib = int(record["memory_mib"])
        self.live_fork = bool(record["live_fork"])
        self.python = record.get("python")
        self._exit_reason: str | None = None

    @property
    def node(self) -> str:
        return self.link.label

    @property
    def alive(self) -> bool:
        return self._exit_reason is None

    @property
    def exit_reason(self) -> str | None:
        return self._exit_reason

    def mark_dead(self, reason: str) -> None:
        if self._exit_reason is None:
            self._exit_reason = reason

    # ---------------------------------------------------------------- calls
    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        import ray

        self._check_alive()
        try:
            return ray.get(
                getattr(self.link.agent, method).remote(self.remote_id, *args), timeout=timeout
            )
        except ray.exceptions.RayActorError as e:
            raise self._lost(e) from None
        except ray.exceptions.GetTimeoutError:
            raise vmm.SandboxTimeout(
                f"node {self.node} did not answer {method} in {timeout} s"
            ) from None

    def _check_alive(self) -> None:
        if self._exit_reason is not None:
            raise vmm.SandboxClosed(f"sandbox is dead ({self._exit_reason})")

    def _lost(self, error: Exception) -> vmm.SandboxCrashed:
        reason = self.link.lost(error)
        self.mark_dead(reason)
        return vmm.SandboxCrashed(reason)

    def run(
        self,
        code: str,
        on_output=None,
        timeout: float | None = None,
        silent: bool = False,
        on_input=None,
        on_display=None,
    ) -> RunResult:
        """Runs a cell on the node; input() in it reads end of input."""
        import ray

        self._check_alive()
        try:
            for ref in self.link.agent.run.remote(self.remote_id, code, timeout):
                kind, data = ray.get(ref)
                if kind == "stream":
                    if on_output is not None:
                        on_output(data["name"], data["text"])
                elif kind in ("display", "clear_output"):
                    if on_display is not None:
                        on_display(kind, data)
                elif kind == "result":
                    return RunResult.from_dict(data)
                elif kind == "raise":
                    raise _vmm_error(data)
        except ray.exceptions.RayActorError as e:
            raise self._lost(e) from None
        raise self._lost(RuntimeError("the cell's event stream ended without a result"))

    def interrupt(self) -> None:
        self._call("interrupt", timeout=30)

    def push_pickled(self, name: str, data: bytes, timeout: float | None = 60.0) -> None:
        self._call("push_pickled", name, data, timeout=timeout)

    def pull_pickled(self, name: str, timeout: float | None = 60.0) -> bytes:
        return self._call("pull_pickled", name, timeout=timeout)

    def close(self, timeout: float = 5.0, graceful: bool = True) -> None:
        import ray

        was_alive = self._exit_reason is None
        self.mark_dead("closed")
        if not was_alive:
            return
        try:
            ray.get(self.link.agent.kill.remote(self.remote_id, graceful), timeout=timeout + 5)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            pass  # a lost node took the sandbox with it
        self.link.forget_sandbox(self)

    # ------------------------------------------- what stays on this host only
    def _unsupported(self, what: str) -> E.RemoteSandbox:
        return E.RemoteSandbox(
            f"{what} is served for sandboxes of this host only; this one runs on node {self.node}",
            node=self.node,
        )

    @property
    def files(self):
        raise self._unsupported("file access")

    @property
    def resident_bytes(self) -> int:
        raise self._unsupported("branching")

    def snapshot(self, *args: Any, **kwargs: Any):
        raise self._unsupported("branching")


def _vmm_error(data: dict) -> vmm.SandboxError:
    kind, message = data.get("kind"), str(data.get("message", ""))
    if kind == "timeout":
        return vmm.SandboxTimeout(message)
    if kind == "crashed":
        return vmm.SandboxCrashed(message)
    return vmm.SandboxClosed(message)
