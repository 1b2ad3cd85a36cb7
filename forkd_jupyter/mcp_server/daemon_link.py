"""The server's link to the daemon: an SDK ``Controller`` that starts the
daemon again when a tool call finds it gone (stopped or restarted), as the
first call did, so an agent's session outlives a daemon restart.

Invariant: a request is retried only after the daemon was found not to
answer at all and was started afresh: the first attempt reached no daemon
that still exists, so nothing is done twice."""

from __future__ import annotations

from typing import Any

import httpx

from ..client import Controller, DaemonUnavailable, connection


class RestartingController(Controller):
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return super()._request(method, path, **kw)
        except DaemonUnavailable:
            conn = self.connection
            if conn.socket is None or connection.is_up(conn):
                raise  # a TCP daemon is not ours to start; a live one answered oddly
            connection.ensure_daemon(conn)
            return super()._request(method, path, **kw)
