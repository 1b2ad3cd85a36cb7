"""The ``error`` object of a ``done`` frame: ``{"ename", "evalue", "traceback"}``,
the traceback a list of strings meant to be joined with newlines."""

from __future__ import annotations

import traceback as _tb


def safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def error_dict(ename: str, evalue: str, lines: list[str]) -> dict:
    return {"ename": ename, "evalue": evalue, "traceback": [str(x) for x in lines]}


def from_exception(exc: BaseException, user_file_prefix: str | None = None) -> dict:
    """A plain (uncoloured) traceback. With user_file_prefix, the leading
    frames up to the first one of user code (whose file name starts with the
    prefix) are dropped: they are the agent's, or the parser's."""
    tb = exc.__traceback__
    if user_file_prefix is not None:
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(user_file_prefix):
            tb = tb.tb_next
    text = "".join(_tb.format_exception(type(exc), exc, tb))
    return error_dict(type(exc).__name__, safe_str(exc), text.rstrip("\n").split("\n"))


def exception_only(exc: BaseException) -> dict:
    lines = "".join(_tb.format_exception_only(type(exc), exc)).rstrip("\n").split("\n")
    return error_dict(type(exc).__name__, safe_str(exc), lines)


def protocol_error(detail: str) -> dict:
    return error_dict("ProtocolError", detail, [f"ProtocolError: {detail}"])


def interrupted() -> dict:
    return error_dict("KeyboardInterrupt", "", ["KeyboardInterrupt"])
