"""One doctor finding. Required findings decide the exit status; the others
only inform (a `warn` never makes the machine unfit)."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""
    required: bool = True
    data: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, ok: bool, detail: str, fix: str, *, required: bool = True, data=None):
        """OK, else FAIL when required and WARN when not; the fix shows only when not OK."""
        status = OK if ok else FAIL if required else WARN
        return cls(name, status, detail, "" if ok else fix, required, data or {})
