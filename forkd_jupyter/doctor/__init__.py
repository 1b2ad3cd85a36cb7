"""`forkd-jupyter doctor`: probes, for real, what the product needs."""

from .checks import Check, run_checks
from .report import render_json, render_text

__all__ = ["Check", "render_json", "render_text", "run_checks"]
