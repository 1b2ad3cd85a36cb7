"""Routes on snapshots, the tree, the timings and the event stream."""

from __future__ import annotations

import asyncio

from tornado.iostream import StreamClosedError

from . import sse
from .base import BaseHandler
from .validate import bad

PING_INTERVAL_S = 15.0
MAX_SEQ = 1 << 62


class SnapshotsHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"snapshots": self.tree.list_snapshots()})


class SnapshotHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(self.tree.snapshot_dict(key))

    async def delete(self, key: str) -> None:
        cascade = self.query_flag("cascade")
        self.send_json({"deleted": await self.call(self.tree.delete_snapshot, key, cascade)})


class SaveSnapshotHandler(BaseHandler):
    async def post(self, key: str) -> None:
        self.json_body().done()
        self.send_json(await self.call(self.tree.save_snapshot, key))


class FoldSnapshotHandler(BaseHandler):
    async def post(self, key: str) -> None:
        self.json_body().done()
        self.send_json(await self.call(self.tree.fold_snapshot, key))


class TreeHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json(self.tree.tree())


class TimingsHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"branches": self.tree.timings()})


class EventsHandler(BaseHandler):
    """One subscriber per connection. The bus calls ``deliver`` on whatever
    thread changed a record; events reach the IO loop through the queue.

    Resuming: ``?since=SEQ`` or the ``Last-Event-ID`` header (``boot:seq``,
    as sent in each event's ``id:``) replays what followed. When that cannot
    be done exactly (another daemon gave the id, or the events are no longer
    kept) the stream starts with a ``reset`` event: the client must fetch
    /v1/tree again."""

    event_stream = True

    def _resume_point(self) -> tuple[int | None, str | None]:
        bus = self.tree.events
        since = self.query_int("since", 0, MAX_SEQ, None)
        last = self.request.headers.get("Last-Event-ID")
        if last is not None and since is None:
            boot, _, seq = last.strip().partition(":")
            if not seq.isdigit() or len(seq) > 18:
                raise bad("Last-Event-ID", "must be an id of this stream (boot:seq)")
            if boot != bus.boot:
                return None, "the daemon restarted since that event"
            since = int(seq)
        if since is not None and not bus.can_replay(since):
            if since > bus.seq:
                return None, "no such event here (the daemon restarted since)"
            return None, "the events since then are no longer kept"
        return since, None

    async def get(self) -> None:
        since, reset = self._resume_point()
        bus = self.tree.events
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        unsubscribe = bus.subscribe(
            lambda ev: loop.call_soon_threadsafe(queue.put_nowait, ev), since
        )
        sse.start(self)
        try:
            hello = {"seq": bus.seq, "boot": bus.boot}
            await sse.send(self, "hello", hello)
            if reset is not None:
                await sse.send(self, "reset", {**hello, "reason": reset})
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), PING_INTERVAL_S)
                except asyncio.TimeoutError:
                    await sse.send(self, "ping", {"seq": bus.seq})
                    continue
                await sse.send(self, event["type"], event, f"{bus.boot}:{event['seq']}")
        except StreamClosedError:
            pass
        finally:
            unsubscribe()
