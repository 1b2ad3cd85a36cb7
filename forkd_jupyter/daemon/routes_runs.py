"""Background runs (controller/runs.py): start a cell and get its id at
once, list and read runs, stream a run's events (resumable with
``Last-Event-ID``), interrupt or cancel it. The run and its buffered output
outlive every connection."""

from __future__ import annotations

import asyncio

from tornado.iostream import StreamClosedError

from . import sse
from .base import MIB, BaseHandler
from .validate import bad

MAX_SEQ = 1 << 62


class SandboxRunsHandler(BaseHandler):
    body_limit = 16 * MIB

    async def get(self, key: str) -> None:
        rec = self.tree.sandbox(key)
        self.send_json({"runs": [r.to_dict() for r in self.tree.runs.of_sandbox(rec.id)]})

    async def post(self, key: str) -> None:
        body = self.json_body()
        code = body.text("code", required=True)
        timeout = body.timeout()
        checkpoint = body.checkpoint()
        body.done()
        run = await self.call(self.tree.start_run, key, code, timeout, checkpoint)
        self.set_header("Location", f"/v1/runs/{run.id}")
        self.send_json(run.to_dict(), 202)


class RunHandler(BaseHandler):
    async def get(self, run_id: str) -> None:
        self.send_json(self.tree.run_record(run_id).to_dict())


class RunInterruptHandler(BaseHandler):
    async def post(self, run_id: str) -> None:
        self.json_body().done()
        run = self.tree.run_record(run_id)
        if not run.finished:
            await self.call(self.tree.interrupt, run.sandbox_id)
        self.send_json(run.to_dict())


class RunStdinHandler(BaseHandler):
    """Answers the cell's ``input()``: ``{"value": "..."}``, or null for
    end of input (EOFError in the cell)."""

    async def post(self, run_id: str) -> None:
        body = self.json_body()
        value = body.text("value", max_len=1 << 20)
        body.done()
        self.send_json((await self.call(self.tree.run_input, run_id, value)).to_dict())


class RunCancelHandler(BaseHandler):
    async def post(self, run_id: str) -> None:
        self.json_body().done()
        self.send_json((await self.call(self.tree.cancel_run, run_id)).to_dict())


class RunEventsHandler(BaseHandler):
    """The run's events from the first one still kept (or after
    ``Last-Event-ID`` / ``?after=``), then live until its last event; a
    ``gap`` event ({dropped}) says output was dropped from the buffer."""

    event_stream = True

    def _after(self) -> int:
        after = self.query_int("after", 0, MAX_SEQ, None)
        if after is not None:
            return after
        last = self.request.headers.get("Last-Event-ID")
        if last is None:
            return 0
        if not last.strip().isdigit() or len(last.strip()) > 18:
            raise bad("Last-Event-ID", "must be the id of an event of this run")
        return int(last.strip())

    async def get(self, run_id: str) -> None:
        run = self.tree.run_record(run_id)
        after = self._after()
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def listener() -> None:
            loop.call_soon_threadsafe(changed.set)

        run.listeners.add(listener)
        sse.start(self)
        try:
            while True:
                changed.clear()
                events, gap = run.after(after)
                if gap:
                    await sse.send(self, "gap", {"after": after, "dropped": run.dropped})
                for seq, event, data in events:
                    await sse.send(self, event, data, seq)
                    after = seq
                    if event in ("result", "error"):
                        self.finish()
                        return
                if run.finished and not run.after(after)[0]:
                    self.finish()  # the reader is past the run's last event
                    return
                await changed.wait()
        except StreamClosedError:
            return  # the run goes on; its events stay for the next reader
        finally:
            run.listeners.discard(listener)
