"""JupyterLab integration: the jupyter-server extension behind the sidebar
panel (``/forkd/api/...``, proxied to the user's daemon through the SDK's
connection settings) and the location of the prebuilt labextension.

Enabled by ``jupyter-config/jupyter_server_config.d/forkd_jupyter.json``,
which the package installs; see docs/labextension.md."""

from __future__ import annotations

LABEXTENSION_NAME = "forkd-jupyter"  # the npm package name in labextension/package.json


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": "static", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "forkd_jupyter.labext"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp)
    serverapp.log.info("forkd-jupyter server extension loaded at /forkd/api")
