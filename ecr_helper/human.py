"""How xecr words counts and durations for people, in logs, ``status`` and ``doctor``:
``count(1, "registry")`` is ``1 registry``, ``duration(22562)`` is ``6h16m``.

On the ground floor (imports nothing of xecr's), so the daemon, the setup
commands and the CLI all say them the same way.
"""

from __future__ import annotations

_IRREGULAR = {"registry": "registries", "entry": "entries", "is": "are", "was": "were"}


def plural(word: str, n: int) -> str:
    """``word`` as it goes with ``n``: ``registry``/``registries``, ``attempt``/``attempts``."""
    if n == 1:
        return word
    return _IRREGULAR.get(word, word + "s")


def count(n: int, word: str) -> str:
    """``1 registry``, ``0 registries``, ``3 attempts``."""
    return f"{n} {plural(word, n)}"


def duration(seconds: float) -> str:
    """A short duration such as ``6h16m``, ``4m10s``, ``45s``, ``2.5s`` or ``-2m5s``.

    Two units at most: a person reads "next refresh in 6h16m" at a glance, not
    22562s. Under 10 s a tenth is kept, so short retry delays do not read ``0s``.
    """
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    hours, minutes, secs = _hms(int(seconds))
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's ``time.Duration.String`` writes them: ``5h59m30s``, ``0s``."""
    hours, minutes, secs = _hms(max(0, int(seconds)))
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _hms(whole: int) -> tuple[int, int, int]:
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return hours, minutes, secs
