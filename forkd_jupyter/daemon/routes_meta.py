"""Health, version, doctor and shutdown."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from .. import __version__
from .base import BaseHandler

API_VERSION = 1


class HealthHandler(BaseHandler):
    public = True

    async def get(self) -> None:
        started = self.application.settings["started"]
        self.send_json(
            {
                "status": "ok",
                "version": __version__,
                "api": API_VERSION,
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - started, 3),
            }
        )


class VersionHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"version": __version__, "api": API_VERSION})


class DoctorHandler(BaseHandler):
    async def get(self) -> None:
        from ..doctor import run_checks, to_document

        checks = await self.call(run_checks)
        self.send_json(json.loads(json.dumps(to_document(checks), default=str)))


class ShutdownHandler(BaseHandler):
    async def post(self) -> None:
        self.json_body().done()
        self.send_json({"stopping": True}, 202)
        self.application.settings["request_stop"]()


SPEC = Path(__file__).with_name("openapi.yaml")


@functools.cache
def _spec_json() -> bytes:
    import yaml

    return json.dumps(yaml.safe_load(SPEC.read_text())).encode()


class OpenApiHandler(BaseHandler):
    """The API's own description (the OpenAPI document), as JSON."""

    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(_spec_json())
