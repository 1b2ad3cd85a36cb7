"""The routes under ``/forkd/api`` (all behind Jupyter's authentication):

- ``GET  handshake[?start=0]``: this extension's version and the daemon's
  (or why not); ``start=0`` never starts a stopped daemon
- ``GET  current[?kernel_id=K]``, ``POST current {"kernel_id", "sandbox_id"}``:
  the sandbox a notebook's kernel works in (reported by its magics)
- ``*    v1/<path>``: the daemon's REST API, proxied (proxy.py)
- ``WS   v1/sandboxes/<sid>/terminals/websocket/<tid>``: a sandbox's
  terminal, relayed to the daemon's terminal WebSocket (terminal_proxy.py)

See docs/labextension.md."""

from __future__ import annotations

import json

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .current import CurrentSandboxes
from .link import DaemonLink
from .problem import problem, send_problem
from .proxy import DaemonProxyHandler
from .terminal_proxy import TerminalSocketProxy

API_ROOT = "forkd/api"


class HandshakeHandler(APIHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        link: DaemonLink = self.settings["forkd_daemon_link"]
        start = self.get_query_argument("start", "1") != "0"
        self.finish(json.dumps(await link.handshake(start=start)))


class CurrentSandboxHandler(APIHandler):
    @property
    def current(self) -> CurrentSandboxes:
        return self.settings["forkd_current_sandboxes"]

    def _live_kernels(self) -> set[str]:
        return set(self.kernel_manager.list_kernel_ids())

    @tornado.web.authenticated
    async def get(self) -> None:
        self.current.prune(self._live_kernels())
        kernel_id = self.get_query_argument("kernel_id", None)
        if kernel_id is None:
            self.finish(json.dumps({"current": self.current.as_dict()}))
        else:
            doc = {"kernel_id": kernel_id, "sandbox_id": self.current.get(kernel_id)}
            self.finish(json.dumps(doc))

    @tornado.web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError as exc:
            return send_problem(self, _bad_request(f"the body is not JSON: {exc}"))
        if not isinstance(body, dict):
            return send_problem(self, _bad_request('expected {"kernel_id", "sandbox_id"}'))
        kernel_id, sandbox_id = body.get("kernel_id"), body.get("sandbox_id")
        if not isinstance(kernel_id, str) or not kernel_id:
            return send_problem(self, _bad_request("kernel_id must be a non-empty string"))
        if sandbox_id is not None and (not isinstance(sandbox_id, str) or not sandbox_id):
            return send_problem(self, _bad_request("sandbox_id must be a non-empty string or null"))
        if kernel_id not in self._live_kernels():
            detail = f"no kernel {kernel_id} runs in this Jupyter server"
            return send_problem(self, problem(404, "not-found", "Not found", detail))
        self.current.set(kernel_id, sandbox_id)
        self.finish(json.dumps({"kernel_id": kernel_id, "sandbox_id": sandbox_id}))


def _bad_request(detail: str) -> dict:
    return problem(400, "bad-request", "Bad request", detail)


def setup_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    web_app.settings["forkd_daemon_link"] = DaemonLink()
    web_app.settings["forkd_current_sandboxes"] = CurrentSandboxes()
    base = url_path_join(web_app.settings["base_url"], API_ROOT)
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "handshake"), HandshakeHandler),
            (url_path_join(base, "current"), CurrentSandboxHandler),
            (
                url_path_join(base, "v1/sandboxes/([^/]+)/terminals/websocket/([^/]+)"),
                TerminalSocketProxy,
            ),  # fmt: skip
            (url_path_join(base, "v1", "(.*)"), DaemonProxyHandler),
        ],
    )
