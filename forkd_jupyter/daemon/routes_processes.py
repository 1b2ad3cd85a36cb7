"""Routes on managed processes and terminals of a sandbox (docs/processes.md):
start, list, get, stdin, stop, kill, logs (JSON, or SSE with ``follow``);
terminals: open, list, get, resize, close, and the terminal's WebSocket.

They run beside cells: a busy sandbox serves them, except that the very
first one of a sandbox waits for a running cell to end (the guest's
supervisor starts then).

Invariant: a log reader that follows (SSE, WebSocket) sends every kept
chunk after the one it last sent, in order, and says when chunks it never
sent were dropped (``gap``), so a client can always tell what it missed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import json
import signal

import tornado.websocket
from tornado.iostream import StreamClosedError

from ..controller import ControllerError
from ..vmm.managed import MAX_LOG_LIMIT, ManagedProcess
from . import problems, sse
from .base import MIB, BaseHandler, authorized, run_blocking
from .validate import Body, bad

MAX_ARGS = 4096
MAX_SEQ = (1 << 62) - 1
TERMINAL_SIZE = (1, 1000)
DEFAULT_SHELL = ["/bin/bash", "-i"]
STOP_GRACE = (0, 3600)


def program_fields(body: Body) -> dict:
    """argv, env and cwd of a program to run, checked."""
    argv = body.checked_elsewhere("argv")
    if (
        not isinstance(argv, list)
        or not 1 <= len(argv) <= MAX_ARGS
        or not all(isinstance(a, str) and "\0" not in a for a in argv)
    ):
        raise bad("argv", f"must be a list of 1 to {MAX_ARGS} strings")
    return {"argv": argv, **environment_fields(body)}


def environment_fields(body: Body) -> dict:
    env = body.checked_elsewhere("env")
    if env is not None and (
        not isinstance(env, dict)
        or not all(
            isinstance(k, str)
            and k
            and "=" not in k
            and "\0" not in k + str(v)
            and isinstance(v, str)
            for k, v in env.items()
        )
    ):
        raise bad("env", "must map variable names to strings")
    return {"env": env, "cwd": body.text("cwd", max_len=4096)}


def describe(proc: ManagedProcess) -> dict:
    doc = proc.to_dict()
    if proc.tty:
        doc.update(cols=proc.cols, rows=proc.rows)
    return doc


class _ProcessHandler(BaseHandler):
    def table_call(self, key: str, method: str, *args: object, **kwargs: object):
        return self.call(self.tree.process_call, key, method, *args, **kwargs)

    async def process(self, key: str, pid_id: str, tty: bool | None = None) -> ManagedProcess:
        proc = await self.table_call(key, "get", pid_id)
        if tty is not None and proc.tty != tty:
            what = "a terminal" if proc.tty else "not a terminal"
            raise bad("id", f"{pid_id} is {what}")
        return proc


class ProcessesHandler(_ProcessHandler):
    """GET: every managed process (terminals too); POST: start one."""

    body_limit = 4 * MIB

    async def get(self, key: str) -> None:
        procs = await self.table_call(key, "list")
        self.send_json({"processes": [describe(p) for p in procs]})

    async def post(self, key: str) -> None:
        body = self.json_body()
        fields = program_fields(body)
        log_limit = body.integer("log_limit_bytes", 1, MAX_LOG_LIMIT, 1 * MIB)
        body.done()
        proc = await self.table_call(key, "start", fields.pop("argv"), log_limit=log_limit,
                                     **fields)  # fmt: skip
        self.send_json(describe(proc), 201)


class ProcessHandler(_ProcessHandler):
    async def get(self, key: str, pid_id: str) -> None:
        self.send_json(describe(await self.process(key, pid_id)))


class ProcessStdinHandler(_ProcessHandler):
    """{data: text} or {data_base64}, and eof: close its stdin after them."""

    body_limit = 16 * MIB

    async def post(self, key: str, pid_id: str) -> None:
        body = self.json_body()
        text, encoded = body.text("data"), body.text("data_base64")
        eof = body.boolean("eof", False)
        body.done()
        if text is not None and encoded is not None:
            raise bad("data_base64", "give data or data_base64, not both")
        try:
            data = base64.b64decode(encoded, validate=True) if encoded else (text or "").encode()
        except (binascii.Error, ValueError):
            raise bad("data_base64", "is not base64") from None
        await self.process(key, pid_id)
        await self.table_call(key, "write", pid_id, data, eof)
        self.send_json(describe(await self.process(key, pid_id)))


class ProcessStopHandler(_ProcessHandler):
    """SIGTERM to its process group, SIGKILL after ``grace`` seconds."""

    async def post(self, key: str, pid_id: str) -> None:
        body = self.json_body()
        grace = body.integer("grace", *STOP_GRACE, 5)
        body.done()
        self.send_json(describe(await self.table_call(key, "stop", pid_id, grace)))


class ProcessKillHandler(_ProcessHandler):
    """A signal (default SIGKILL) to its process group."""

    async def post(self, key: str, pid_id: str) -> None:
        body = self.json_body()
        signo = body.integer("signal", 1, 64, int(signal.SIGKILL))
        body.done()
        await self.table_call(key, "signal", pid_id, signo)
        self.send_json(describe(await self.process(key, pid_id)))


class ProcessLogsHandler(_ProcessHandler):
    """The kept output after ``after`` (a chunk's seq): JSON, or with
    ``follow`` an event stream of ``output`` events ({seq, stream, data}),
    ``gap`` ({after, dropped_bytes}) and a last ``exit`` (the process)."""

    event_stream = True

    async def get(self, key: str, pid_id: str) -> None:
        follow = self.query_flag("follow")
        after = self.query_int("after", 0, MAX_SEQ, None)
        if after is None:
            last = (self.request.headers.get("Last-Event-ID") or "0").strip()
            if not last.isdigit() or len(last) > 18:
                raise bad("Last-Event-ID", "must be the seq of a chunk of this process")
            after = int(last)
        encoding = self.query("encoding", "text")
        if encoding not in ("text", "base64"):
            raise bad("encoding", "must be text or base64")
        proc = await self.process(key, pid_id)
        encode = _encoder(encoding)
        if not follow:
            chunks, gap = proc.after(after)
            self.send_json({"process": describe(proc), "gap": gap,
                            "chunks": [encode(c) for c in chunks]})  # fmt: skip
            return
        sse.start(self)
        try:
            async for chunks, gap in follow_log(proc, after):
                if gap:
                    await sse.send(
                        self, "gap", {"after": after, "dropped_bytes": proc.dropped_bytes}
                    )
                for chunk in chunks:
                    await sse.send(self, "output", encode(chunk), chunk[0])
                    after = chunk[0]
            await sse.send(self, "exit", describe(proc))
            self.finish()
        except StreamClosedError:
            return


async def follow_log(proc: ManagedProcess, after: int):
    """Yields (chunks, gap) as output arrives, until the process ended and
    everything kept was yielded."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def listener() -> None:
        loop.call_soon_threadsafe(changed.set)

    proc.listeners.add(listener)
    try:
        while True:
            changed.clear()
            ended = proc.ended  # read before the chunks: nothing can follow the end
            chunks, gap = proc.after(after)
            if chunks or gap:
                yield chunks, gap
                if chunks:
                    after = chunks[-1][0]
            if ended and not proc.after(after)[0]:
                return
            await changed.wait()
    finally:
        proc.listeners.discard(listener)


def _encoder(encoding: str):
    def encode(chunk: tuple[int, str, bytes]) -> dict:
        seq, stream, data = chunk
        if encoding == "base64":
            return {"seq": seq, "stream": stream, "data": base64.b64encode(data).decode()}
        return {"seq": seq, "stream": stream, "data": data.decode("utf-8", "replace")}

    return encode


# ------------------------------------------------------------------ terminals
class TerminalsHandler(_ProcessHandler):
    """GET: the sandbox's terminals; POST: a shell (or argv) on a new PTY."""

    async def get(self, key: str) -> None:
        procs = await self.table_call(key, "list")
        self.send_json({"terminals": [describe(p) for p in procs if p.tty]})

    async def post(self, key: str) -> None:
        body = self.json_body()
        argv = body.checked_elsewhere("argv")
        fields = program_fields(body) if argv is not None else environment_fields(body)
        argv = fields.pop("argv", None) or DEFAULT_SHELL
        cols = body.integer("cols", *TERMINAL_SIZE, 80)
        rows = body.integer("rows", *TERMINAL_SIZE, 24)
        term = body.text("term", max_len=64)
        if term is not None and (not term or not term.isprintable() or " " in term):
            raise bad("term", "must be a terminal type name such as xterm-256color")
        body.done()
        proc = await self.table_call(key, "start", argv, tty=True, cols=cols, rows=rows,
                                     term=term, **fields)  # fmt: skip
        self.send_json(describe(proc), 201)


class TerminalHandler(_ProcessHandler):
    """GET: the terminal; DELETE: hang it up (SIGHUP, then SIGKILL)."""

    async def get(self, key: str, pid_id: str) -> None:
        self.send_json(describe(await self.process(key, pid_id, tty=True)))

    async def delete(self, key: str, pid_id: str) -> None:
        proc = await self.process(key, pid_id, tty=True)
        if not proc.ended:
            await self.table_call(key, "signal", pid_id, int(signal.SIGHUP))
            await self.table_call(key, "stop", pid_id, 2)
        self.set_status(204)
        self.finish()


class TerminalResizeHandler(_ProcessHandler):
    async def post(self, key: str, pid_id: str) -> None:
        body = self.json_body()
        cols = body.integer("cols", *TERMINAL_SIZE)
        rows = body.integer("rows", *TERMINAL_SIZE)
        body.done()
        if cols is None or rows is None:
            raise bad("cols" if cols is None else "rows", "is required")
        await self.process(key, pid_id, tty=True)
        await self.table_call(key, "resize", pid_id, cols, rows)
        self.send_json(describe(await self.process(key, pid_id, tty=True)))


class TerminalSocketHandler(tornado.websocket.WebSocketHandler):
    """The terminal over a WebSocket, in terminado's messages (what
    JupyterLab's terminal speaks): from the client ``["stdin", text]`` and
    ``["set_size", rows, cols, ...]``; to it ``["setup", {}]``, then
    ``["stdout", text]`` (what the terminal kept first, then live) and
    ``["disconnect", 1]`` when the program ended, after which the socket
    closes."""

    async def get(self, key: str, pid_id: str) -> None:
        tree = self.application.settings["tree"]
        doc = None
        if not authorized(self, query_token=True):
            doc = problems.problem("unauthorized", 401, "a valid token is required")
        else:
            try:
                proc = await run_blocking(self.application, tree.process_call, key, "get", pid_id)
                if not proc.tty:
                    doc = problems.problem("bad-request", 400, f"{pid_id} is not a terminal")
            except ControllerError as e:
                doc = problems.problem(e.kind, e.status, e.detail, **e.extra)
        if doc is not None:
            self.set_status(doc["status"])
            self.set_header("Content-Type", problems.CONTENT_TYPE)
            self.finish(json.dumps(doc))
            return
        self.key, self.proc, self.tree = key, proc, tree
        await super().get(key, pid_id)

    def check_origin(self, origin: str) -> bool:
        return True  # the token (or the unix socket) is the authorization

    def open(self, key: str, pid_id: str) -> None:
        self.write_message(json.dumps(["setup", {}]))
        self._pump = asyncio.ensure_future(self._send_output())

    async def _send_output(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            async for chunks, _gap in follow_log(self.proc, 0):
                text = "".join(decoder.decode(c[2]) for c in chunks)
                if text:
                    await self.write_message(json.dumps(["stdout", text]))
            await self.write_message(json.dumps(["disconnect", 1]))
            self.close(1000, "the terminal's program ended")
        except tornado.websocket.WebSocketClosedError:
            pass

    async def on_message(self, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            kind = msg[0]
        except (ValueError, TypeError, IndexError, KeyError):
            return  # not a terminal message: ignored, as terminado does
        try:
            if kind == "stdin" and isinstance(msg[1], str):
                await self._on_terminal("write", msg[1].encode("utf-8", "surrogateescape"))
            elif kind == "set_size":
                rows, cols = int(msg[1]), int(msg[2])
                if TERMINAL_SIZE[0] <= rows <= TERMINAL_SIZE[1] and (
                    TERMINAL_SIZE[0] <= cols <= TERMINAL_SIZE[1]
                ):
                    await self._on_terminal("resize", cols, rows)
        except (ControllerError, ValueError, TypeError, IndexError):
            pass  # the program ended meanwhile; the output task says so

    def _on_terminal(self, method: str, *args: object):  # noqa: ANN202
        """ProcessTable.method(terminal id, *args), off the IO loop."""
        tree_call = self.tree.process_call
        return run_blocking(self.application, tree_call, self.key, method, self.proc.id, *args)

    def on_close(self) -> None:
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()
