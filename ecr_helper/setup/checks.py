"""One outcome of ``xecr doctor``: :class:`Check`, shared by the modules that make them
(:mod:`.doctor`, :mod:`.doctor_docker`, :mod:`.doctor_daemon`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One check's outcome. A failed ``warning_only`` check is shown but fails nothing."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    warning_only: bool = False

    @property
    def failed(self) -> bool:
        return not self.ok and not self.warning_only

    def line(self) -> str:
        if self.ok:
            return f"PASS {self.name}: {self.detail}"
        word = "WARN" if self.warning_only else "FAIL"
        hint = f" -- {self.hint}" if self.hint else ""
        return f"{word} {self.name}: {self.detail}{hint}"


def passed(checks: Sequence[Check]) -> bool:
    return not any(check.failed for check in checks)
