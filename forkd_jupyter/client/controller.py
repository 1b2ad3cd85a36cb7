"""``Controller``: the SDK. One method per daemon route, named as in the
forkd SDK where the idea is the same. Records are the JSON dictionaries of
docs/rest-api.md; cells return ``RunResult``.

Thread safety: one Controller may be used from several threads at once
(httpx clients are thread-safe); ``events`` opens its own connection."""

from __future__ import annotations

import base64
import pickle
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from .. import python_env
from ..modes import BranchMode
from ..run_result import RunResult
from . import connection
from .errors import DaemonUnavailable, ForkdError, from_problem
from .processes import ProcessCalls
from .sse import iter_events, iter_events_with_ids

OutputCallback = Callable[[str, str], None]


class Controller(ProcessCalls):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        autostart: bool = True,
        timeout: float = 120.0,
        cluster: str | None = None,
    ) -> None:
        """``cluster`` ("auto", "ray://host:port" or "host:port") makes the
        daemon join that Ray cluster, and this controller's branches and
        spawns from snapshots spread their children over its nodes
        (docs/cluster.md)."""
        self.connection = connection.resolve(url, token)
        if autostart:
            connection.ensure_daemon(self.connection)
        self._timeout = timeout
        self._http = self._client(timeout)
        self.cluster = cluster
        if cluster is not None:
            self.join_cluster(cluster)

    def _client(self, timeout: float | None) -> httpx.Client:
        return httpx.Client(
            base_url=self.connection.base_url + "/v1",
            transport=self.connection.transport(),
            headers=self.connection.headers(),
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise DaemonUnavailable(
                f"cannot reach the forkd-jupyter daemon at {self.connection.describe()}: {e}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._request(method, path, **kw).json()

    # ---------------------------------------------------------------- meta
    def health(self) -> dict:
        return self._json("GET", "/health")

    def version(self) -> dict:
        return self._json("GET", "/version")

    def doctor(self) -> dict:
        return self._json("GET", "/doctor")

    def shutdown_daemon(self) -> None:
        self._json("POST", "/shutdown")

    # ----------------------------------------------------------- sandboxes
    def spawn_sandboxes(
        self,
        n: int = 1,
        live_fork: bool = True,
        memory_limit_mib: int | None = None,
        snapshot_tag: str | None = None,
        *,
        snapshot_id: str | None = None,
        name: str | None = None,
        python: str | None = None,
        preload: list[str] | None = None,
        spread: bool | None = None,
    ) -> list[dict]:
        """New sandboxes, or children of a snapshot (spread over the cluster
        when ``spread``; by default when this controller has one). A new sandbox runs this
        process's Python environment (its venv, site-packages, PYTHONPATH),
        or the interpreter at ``python``; children run their snapshot's. A
        new sandbox starts from its environment's warm base (built on the
        first spawn, with the modules in ``preload`` imported)."""
        body = {
            "n": n,
            "live_fork": live_fork,
            "memory_limit_mib": memory_limit_mib,
            "snapshot_id": snapshot_id,
            "snapshot_tag": snapshot_tag,
            "name": name,
            "python": (
                python_env.client_request()
                if python is None
                else {"executable": python, "pythonpath": []}
            ),
            "preload": preload,
        }
        if snapshot_id is not None or snapshot_tag is not None:
            body["spread"] = self._spread(spread)
        return self._json("POST", "/sandboxes", json=body, timeout=None)["sandboxes"]

    def _spread(self, spread: bool | None) -> bool:
        return self.cluster is not None if spread is None else bool(spread)

    # ------------------------------------------------------------- cluster
    def join_cluster(self, address: str = "auto") -> dict:
        """Makes the daemon join a Ray cluster; ``{"address", "nodes"}``."""
        return self._json("POST", "/cluster", json={"address": address}, timeout=None)

    def cluster_info(self) -> dict:
        """The cluster the daemon joined and its nodes (each with
        ``usable``, the ``reason`` when not, and ``free_bytes``)."""
        return self._json("GET", "/cluster")

    def list_bases(self) -> list[dict]:
        """The daemon's warm bases, one per environment, memory size and
        preloaded modules."""
        return self._json("GET", "/bases")["bases"]

    def delete_base(self, base_id: str) -> dict:
        return self._json("DELETE", f"/bases/{base_id}")

    def list_sandboxes(self) -> list[dict]:
        return self._json("GET", "/sandboxes")["sandboxes"]

    def get_sandbox(self, sandbox_id: str) -> dict:
        return self._json("GET", f"/sandboxes/{sandbox_id}")

    def kill_sandbox(self, sandbox_id: str) -> dict:
        return self._json("DELETE", f"/sandboxes/{sandbox_id}")

    def interrupt(self, sandbox_id: str) -> None:
        self._json("POST", f"/sandboxes/{sandbox_id}/interrupt")

    def run_cell(
        self,
        sandbox_id: str,
        code: str,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        on_input: Callable[[str, bool], str | None] | None = None,
        on_display: Callable[[str, dict], None] | None = None,
        checkpoint: dict | None = None,
        on_checkpoint: Callable[[dict], None] | None = None,
    ) -> RunResult:
        """Runs a cell; ``on_output(name, text)`` receives stdout/stderr as
        the guest writes them, ``on_input(prompt, password)`` answers the
        cell's input() (None: end of input; without it input() raises
        EOFError), ``on_display(kind, fields)`` sees each ``display``
        (``data``, ``metadata``, ``transient``, ``update``) and
        ``clear_output`` (``wait``) as the guest makes it, in order with the
        output. A guest exception is ``result.error``. ``checkpoint``
        ({"cell", "line", "after"}): a notebook checkpoint is taken just
        before the cell, in the same request; ``on_checkpoint`` receives its
        snapshot record before any output."""
        body = {"code": code, "timeout": timeout}
        plain = on_output is None and on_input is None and on_display is None
        if plain and checkpoint is None:
            return RunResult.from_dict(
                self._json("POST", f"/sandboxes/{sandbox_id}/run", json=body, timeout=None)
            )
        run = self.start_run(sandbox_id, code, timeout, checkpoint=checkpoint)
        if on_checkpoint is not None and run.get("checkpoint") is not None:
            on_checkpoint(run["checkpoint"])
        for event, data in self.run_events(run["id"]):
            if event == "stream" and on_output is not None:
                on_output(data["name"], data["text"])
            elif event == "input_request":
                answer = on_input(data["prompt"], data["password"]) if on_input else None
                self.send_stdin(run["id"], answer)
            elif event in ("display", "clear_output") and on_display is not None:
                on_display(event, data)
            elif event == "result":
                return RunResult.from_dict(data)
            elif event == "error":
                raise from_problem(data)
        raise DaemonUnavailable("the run's event stream ended without a result")

    # ------------------------------------------------------- background runs
    def start_run(
        self,
        sandbox_id: str,
        code: str,
        timeout: float | None = None,
        checkpoint: dict | None = None,
    ) -> dict:
        """Starts a cell in the background and returns its run record
        (``id``, ``status``...) at once; the daemon keeps its output and
        result whether or not anyone listens. ``checkpoint``: see
        ``run_cell``; the record's ``checkpoint`` is the snapshot taken."""
        body: dict = {"code": code, "timeout": timeout}
        if checkpoint is not None:
            body["checkpoint"] = checkpoint
        return self._json("POST", f"/sandboxes/{sandbox_id}/runs", json=body)

    def get_run(self, run_id: str) -> dict:
        """The run record; ``result`` (or ``error``) once it has finished."""
        return self._json("GET", f"/runs/{run_id}")

    def list_runs(self, sandbox_id: str) -> list[dict]:
        return self._json("GET", f"/sandboxes/{sandbox_id}/runs")["runs"]

    def send_stdin(self, run_id: str, value: str | None) -> dict:
        """Answers the run's waiting input() (None: end of input)."""
        return self._json("POST", f"/runs/{run_id}/stdin", json={"value": value})

    def cancel_run(self, run_id: str) -> dict:
        return self._json("POST", f"/runs/{run_id}/cancel")

    def interrupt_run(self, run_id: str) -> dict:
        return self._json("POST", f"/runs/{run_id}/interrupt")

    def run_events(
        self, run_id: str, after: int = 0, retries: int = 5
    ) -> Iterator[tuple[str, dict]]:
        """(event, data) of the run from after event ``after`` to its last
        (``result`` or ``error``). A broken connection is resumed where it
        left off (``Last-Event-ID``), so no output is lost or repeated."""
        yield from self._follow(f"/runs/{run_id}/events", after, retries, ("result", "error"),
                                "the run's event stream")  # fmt: skip

    def _follow(
        self, path: str, after: int, retries: int, last_events: tuple[str, ...], what: str,
        params: dict | None = None,
    ) -> Iterator[tuple[str, dict]]:  # fmt: skip
        """(event, data) of an event stream whose events carry ids, until
        one of ``last_events``; a broken connection is resumed after the
        last id seen (``Last-Event-ID``)."""
        last, failures = after, 0
        while True:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            try:
                with self._http.stream(
                    "GET", path, params=params, headers=headers, timeout=None
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error(response)
                    for event, data, ident in iter_events_with_ids(response):
                        if ident is not None:
                            last = int(ident)
                        failures = 0
                        yield event, data
                        if event in last_events:
                            return
            except httpx.TransportError as e:
                failures += 1
                if failures > retries:
                    raise DaemonUnavailable(f"{what} broke: {e}") from None
                time.sleep(min(2.0, 0.1 * 2**failures))

    eval_code = run_cell

    def push(self, sandbox_id: str, name: str, value: Any) -> None:
        data = base64.b64encode(pickle.dumps(value)).decode()
        self._json("POST", f"/sandboxes/{sandbox_id}/push", json={"name": name, "pickle": data})

    def run_process(
        self,
        sandbox_id: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | None = None,
        timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> dict:
        """Runs a program once in the sandbox: exit_code (< 0: killed by
        that signal), stdout, stderr, stdout_truncated, stderr_truncated,
        timed_out, duration_ms. ``env`` adds to the sandbox's environment."""
        body: dict[str, Any] = {"argv": list(argv)}
        for key, value in (("env", env), ("cwd", cwd), ("stdin", stdin), ("timeout", timeout),
                           ("max_output_bytes", max_output_bytes)):  # fmt: skip
            if value is not None:
                body[key] = value
        path = f"/sandboxes/{sandbox_id}/processes/run"
        return self._json("POST", path, json=body, timeout=None)

    def pull(self, sandbox_id: str, name: str) -> Any:
        doc = self._json("POST", f"/sandboxes/{sandbox_id}/pull", json={"name": name})
        return pickle.loads(base64.b64decode(doc["pickle"]))

    # -------------------------------------------------------------- branch
    def branch_sandbox(
        self,
        sandbox_id: str,
        tag: str | None = None,
        mode: BranchMode | None = None,
        wait: bool = True,
        diff: bool = False,
        measure_diff: bool = False,
        count: int = 0,
        spread: bool | None = None,
        checkpoint: dict | None = None,
    ) -> dict:
        """``{"snapshot": record, "children": [records]}``. ``checkpoint``
        ({"cell", "line", "after"}) marks it as a notebook's checkpoint. ``mode`` wins
        over the legacy ``diff`` flag; giving both is a BadRequest. The
        children spread over the cluster when ``spread`` (by default when
        this controller was made with one); each child's ``node`` says
        where it runs."""
        body = {
            "tag": tag,
            "mode": mode,
            "wait": wait,
            "diff": diff,
            "measure_diff": measure_diff,
            "count": count,
            "spread": self._spread(spread) and count > 0,
        }
        if checkpoint is not None:
            body["checkpoint"] = checkpoint
        return self._json("POST", f"/sandboxes/{sandbox_id}/branch", json=body, timeout=None)

    # ----------------------------------------------------------- snapshots
    def list_snapshots(self) -> list[dict]:
        return self._json("GET", "/snapshots")["snapshots"]

    def get_snapshot(self, snapshot_id: str) -> dict:
        return self._json("GET", f"/snapshots/{snapshot_id}")

    def delete_snapshot(self, snapshot_id: str, cascade: bool = False) -> list[str]:
        params = {"cascade": "true"} if cascade else None
        return self._json("DELETE", f"/snapshots/{snapshot_id}", params=params)["deleted"]

    def save_snapshot(self, snapshot_id: str) -> dict:
        return self._json("POST", f"/snapshots/{snapshot_id}/save", timeout=None)

    def fold_snapshot(self, snapshot_id: str) -> dict:
        """Folds the snapshot into the one diff built on it (that diff keeps
        its state and id; this one is gone); returns that diff's record."""
        return self._json("POST", f"/snapshots/{snapshot_id}/fold", timeout=None)

    # -------------------------------------------------------- tree, events
    def tree(self) -> dict:
        return self._json("GET", "/tree")

    def timings(self) -> list[dict]:
        return self._json("GET", "/timings")["branches"]

    def events(self, since: int | None = None) -> EventStream:
        """Daemon events as they happen (``type`` sandbox or snapshot, with
        ``action``, ``seq`` and the record); iterating blocks between events.
        ``close()`` (from any thread) disconnects."""
        return EventStream(self._client(None), since)

    # --------------------------------------------------------------- files
    def read_file(self, sandbox_id: str, path: str) -> bytes:
        r = self._request("GET", f"/sandboxes/{sandbox_id}/files", params={"path": path})
        if r.headers.get("content-type", "").startswith("application/json"):
            raise IsADirectoryError(f"{path} is a directory")
        return r.content

    def list_dir(
        self, sandbox_id: str, path: str, recursive: bool = False, limit: int | None = None
    ) -> list[dict]:
        """Entries of a directory; ``recursive`` lists the whole tree below
        (names relative to ``path``), at most ``limit`` entries."""
        params: dict = {"path": path}
        if recursive:
            params["recursive"] = "true"
        if limit is not None:
            params["limit"] = str(limit)
        r = self._request("GET", f"/sandboxes/{sandbox_id}/files", params=params)
        if not r.headers.get("content-type", "").startswith("application/json"):
            raise NotADirectoryError(f"{path} is not a directory")
        return r.json()["entries"]

    def stat(self, sandbox_id: str, path: str) -> dict:
        """``{"path", "name", "type", "size", "mode", "mtime"}`` of a path."""
        return self._json("GET", f"/sandboxes/{sandbox_id}/stat", params={"path": path})

    def remove(self, sandbox_id: str, path: str, recursive: bool = False) -> list[str]:
        """Removes a file or empty directory (``recursive``: a whole tree)."""
        params = {"path": path, "recursive": "true" if recursive else "false"}
        return self._json("DELETE", f"/sandboxes/{sandbox_id}/files", params=params)["deleted"]

    def mkdir(self, sandbox_id: str, path: str, parents: bool = False) -> str:
        body = {"path": path, "parents": parents}
        return self._json("POST", f"/sandboxes/{sandbox_id}/mkdir", json=body)["path"]

    def move(self, sandbox_id: str, source: str, destination: str, overwrite: bool = False) -> dict:
        body = {"source": source, "destination": destination, "overwrite": overwrite}
        return self._json("POST", f"/sandboxes/{sandbox_id}/move", json=body)

    def write_file(self, sandbox_id: str, path: str, data: bytes) -> dict:
        return self._json(
            "PUT", f"/sandboxes/{sandbox_id}/files", params={"path": path}, content=data
        )

    def upload_tar(self, sandbox_id: str, path: str, tar_bytes: bytes) -> dict:
        return self._json(
            "PUT",
            f"/sandboxes/{sandbox_id}/tar",
            params={"path": path},
            content=tar_bytes,
            headers={"Content-Type": "application/x-tar"},
        )

    def download_tar(self, sandbox_id: str, path: str) -> bytes:
        return self._request("GET", f"/sandboxes/{sandbox_id}/tar", params={"path": path}).content


def _error(response: httpx.Response) -> ForkdError:
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {
            "type": "about:blank",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": response.text[:500],
        }
    return from_problem(problem)


class EventStream:
    """An iterator over ``/v1/events`` on its own connection. Invariant:
    ``close`` may be called from another thread while a reader is blocked
    in ``__next__``; the reader then stops (StopIteration)."""

    def __init__(self, client: httpx.Client, since: int | None) -> None:
        self._client = client
        self._since = since
        self._closed = False
        self._events: Iterator[dict] | None = None
        self._response: httpx.Response | None = None

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> dict:
        if self._events is None:
            self._events = self._generate()
        return next(self._events)

    def _generate(self) -> Iterator[dict]:
        params = {"since": self._since} if self._since is not None else None
        try:
            with self._client.stream("GET", "/events", params=params) as response:
                self._response = response
                if self._closed:
                    return
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for event, data in iter_events(response):
                    if event in ("sandbox", "snapshot"):
                        yield data
        except (httpx.TransportError, httpx.StreamError) as e:
            if not self._closed:
                raise DaemonUnavailable(f"the event stream broke: {e}") from None
        finally:
            self._client.close()

    def close(self) -> None:
        """Shuts the connection's socket down, which wakes a reader blocked
        on it (closing the client alone would not)."""
        self._closed = True
        response = self._response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._events is None:
            self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
