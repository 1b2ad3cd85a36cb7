"""The daemon: REST routes and event streams over the controller (see
docs/rest-api.md). ``serve`` runs it; ``make_app`` builds the application."""

from .app import make_app
from .serve import serve

__all__ = ["make_app", "serve"]
