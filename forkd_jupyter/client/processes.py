"""The SDK's calls on managed processes and terminals (docs/processes.md),
mixed into :class:`~forkd_jupyter.client.controller.Controller`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any


class ProcessCalls:
    def start_process(
        self,
        sandbox_id: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        log_limit_bytes: int | None = None,
    ) -> dict:
        """Starts a program that runs beside the cells; returns its record
        (id, state, pid...). Its output is kept in a log (the newest
        ``log_limit_bytes``, default 1 MiB)."""
        body = _fields(argv=list(argv), env=env, cwd=cwd, log_limit_bytes=log_limit_bytes)
        return self._json("POST", f"/sandboxes/{sandbox_id}/processes", json=body, timeout=None)

    def list_processes(self, sandbox_id: str) -> list[dict]:
        return self._json("GET", f"/sandboxes/{sandbox_id}/processes")["processes"]

    def get_process(self, sandbox_id: str, process_id: str) -> dict:
        return self._json("GET", f"/sandboxes/{sandbox_id}/processes/{process_id}")

    def write_process_stdin(
        self, sandbox_id: str, process_id: str, data: str | bytes, eof: bool = False
    ) -> dict:
        """Sends ``data`` to the program's stdin; ``eof`` closes it after."""
        body: dict[str, Any] = {"eof": eof}
        if isinstance(data, bytes):
            body["data_base64"] = base64.b64encode(data).decode()
        else:
            body["data"] = data
        path = f"/sandboxes/{sandbox_id}/processes/{process_id}/stdin"
        return self._json("POST", path, json=body)

    def stop_process(self, sandbox_id: str, process_id: str, grace: int = 5) -> dict:
        """SIGTERM to its process group, SIGKILL after ``grace`` seconds."""
        path = f"/sandboxes/{sandbox_id}/processes/{process_id}/stop"
        return self._json("POST", path, json={"grace": grace})

    def kill_process(self, sandbox_id: str, process_id: str, signal: int = 9) -> dict:
        path = f"/sandboxes/{sandbox_id}/processes/{process_id}/kill"
        return self._json("POST", path, json={"signal": signal})

    def process_logs(self, sandbox_id: str, process_id: str, after: int = 0) -> dict:
        """What its log keeps after chunk ``after``: {process, gap, chunks:
        [{seq, stream, data}]}."""
        path = f"/sandboxes/{sandbox_id}/processes/{process_id}/logs"
        return self._json("GET", path, params={"after": after})

    def follow_process(
        self, sandbox_id: str, process_id: str, after: int = 0, retries: int = 5
    ) -> Iterator[tuple[str, dict]]:
        """(event, data) as the program writes: ``output`` ({seq, stream,
        data}), ``gap`` (chunks dropped before they were read) and a last
        ``exit`` (the process record). A broken connection resumes after
        the last chunk seen."""
        path = f"/sandboxes/{sandbox_id}/processes/{process_id}/logs"
        yield from self._follow(path, after, retries, ("exit",), "the process's log stream",
                                params={"follow": "true"})  # fmt: skip

    # ------------------------------------------------------------ terminals
    def open_terminal(
        self,
        sandbox_id: str,
        *,
        argv: list[str] | None = None,
        cols: int = 80,
        rows: int = 24,
        term: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> dict:
        """A shell (or ``argv``) on a new pseudo-terminal in the sandbox;
        talk to it over ``terminal_socket_url`` or write/read it as a
        process."""
        body = _fields(argv=argv, cols=cols, rows=rows, term=term, env=env, cwd=cwd)
        return self._json("POST", f"/sandboxes/{sandbox_id}/terminals", json=body, timeout=None)

    def list_terminals(self, sandbox_id: str) -> list[dict]:
        return self._json("GET", f"/sandboxes/{sandbox_id}/terminals")["terminals"]

    def resize_terminal(self, sandbox_id: str, terminal_id: str, cols: int, rows: int) -> dict:
        path = f"/sandboxes/{sandbox_id}/terminals/{terminal_id}/resize"
        return self._json("POST", path, json={"cols": cols, "rows": rows})

    def close_terminal(self, sandbox_id: str, terminal_id: str) -> None:
        """Hangs the terminal up (SIGHUP, then SIGKILL)."""
        self._request("DELETE", f"/sandboxes/{sandbox_id}/terminals/{terminal_id}")

    def terminal_socket_path(self, sandbox_id: str, terminal_id: str) -> str:
        """The terminal's WebSocket path on the daemon (terminado's
        messages: docs/processes.md)."""
        return f"/v1/sandboxes/{sandbox_id}/terminals/{terminal_id}/ws"


def _fields(**fields: Any) -> dict:
    return {k: v for k, v in fields.items() if v is not None}
