"""The server extension's one way to the user's daemon: the SDK's connection
settings (``forkd_jupyter.client.connection``) and one pooled async HTTP
client on them, shared by every request of this Jupyter server."""

from __future__ import annotations

import asyncio

import httpx

from .. import __version__
from ..client import connection
from ..client.errors import DaemonUnavailable

SUPPORTED_API = 1  # the daemon's `api` number this extension speaks
# No read timeout: event streams stay open and cells run as long as they run.
TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=10.0)


class DaemonLink:
    """Resolves the connection on first use, so the environment at the
    first request (not at import) decides which daemon this is."""

    def __init__(self) -> None:
        self._conn: connection.Connection | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def conn(self) -> connection.Connection:
        if self._conn is None:
            self._conn = connection.resolve()
        return self._conn

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            conn = self.conn
            self._client = httpx.AsyncClient(
                transport=conn.async_transport(),
                base_url=conn.base_url,
                headers=conn.headers(),
                timeout=TIMEOUT,
            )
        return self._client

    async def ensure_running(self) -> None:
        """Starts the daemon when nothing answers on the user's socket (as
        the SDK does); raises DaemonUnavailable with the reason otherwise."""
        await asyncio.to_thread(connection.ensure_daemon, self.conn)

    async def handshake(self, start: bool = True) -> dict:
        """What the panel checks before anything else: this extension's
        version, and the daemon's, or why the daemon cannot be reached.
        Without ``start``, a stopped daemon stays stopped and is reported
        as such (``daemon_stopped``): the panel only starts it on its first
        connection or when the user asks, never behind a `daemon stop`."""
        doc = {
            "extension_version": __version__,
            "daemon": None,
            "daemon_error": None,
            "daemon_stopped": False,
            "daemon_url": None,
        }
        try:
            doc["daemon_url"] = self.conn.describe()
            if start:
                await self.ensure_running()
            elif not await asyncio.to_thread(connection.is_up, self.conn):
                where = self.conn.describe()
                doc["daemon_error"] = f"the daemon is stopped (nothing answers at {where})"
                doc["daemon_stopped"] = True
                return doc
            response = await self.client.get("/v1/version")
        except (DaemonUnavailable, ValueError, httpx.HTTPError) as exc:
            doc["daemon_error"] = str(exc) or type(exc).__name__
            return doc
        if response.status_code != 200:
            doc["daemon_error"] = _refusal(response)
            return doc
        version = response.json()
        if version.get("api") != SUPPORTED_API:
            doc["daemon_error"] = (
                f"the daemon at {self.conn.describe()} speaks API {version.get('api')}, "
                f"this extension speaks API {SUPPORTED_API}: install one version of forkd-jupyter"
            )
        doc["daemon"] = version
        return doc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _refusal(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"the daemon answered {response.status_code}" + (f": {detail}" if detail else "")
