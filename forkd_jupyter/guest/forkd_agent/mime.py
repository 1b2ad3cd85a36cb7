"""Mime bundles without IPython: ``text/plain`` is ``repr``; the usual
``_repr_*_`` methods add richer types (as IPython's formatters do)."""

from __future__ import annotations

import base64

from .errors import safe_str

_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
)


def bundle(obj: object) -> tuple[dict, dict]:
    """(data, metadata) for obj; a failing _repr_*_ is skipped."""
    data: dict = {}
    metadata: dict = {}
    method = _method(obj, "_repr_mimebundle_")
    if method is not None:
        try:
            got = method()
            if isinstance(got, tuple) and len(got) == 2:
                got, md = got
                metadata.update(md or {})
            data.update(got or {})
        except Exception:
            pass
    for mime, name in _REPR_METHODS:
        if mime in data:
            continue
        method = _method(obj, name)
        if method is None:
            continue
        try:
            value = method()
        except Exception:
            continue
        if isinstance(value, tuple) and len(value) == 2:
            value, metadata[mime] = value
        if value is None:
            continue
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        data[mime] = value
    if "text/plain" not in data:
        try:
            data["text/plain"] = repr(obj)
        except Exception:
            data["text/plain"] = f"<unrepresentable {type(obj).__name__}: {safe_str(obj)}>"
    return data, metadata


def _method(obj: object, name: str):
    # Looked up on the type, as IPython does: an instance attribute or a
    # class passed as the object does not count.
    if isinstance(obj, type):
        return None
    method = getattr(type(obj), name, None)
    return None if method is None else getattr(obj, name, None)
