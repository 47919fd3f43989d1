"""The process's standard streams when they are missing, closed or full.

``docker-credential-xecr version </dev/null >&-`` or ``... >/dev/full`` must
end with at most one line on stderr and no traceback. Python sets
``sys.stdin``/``sys.stdout`` to None when the descriptor was closed at start;
a full or broken stdout fails on flush. :class:`Output` swallows the failure
once, says so in one line on stderr, and points the descriptor at /dev/null
so the interpreter's own flush at exit has nothing to complain about.
"""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO


def stdin_bytes() -> BinaryIO | None:
    """stdin as bytes, or None when the process was started without one."""
    stream = sys.stdin
    if stream is None:
        return None
    return getattr(stream, "buffer", None)


def say(line: str) -> None:
    """One line on stderr, if there is a stderr to write it to."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        _silence(stream)


def _silence(stream: TextIO) -> None:
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


class Output(io.TextIOBase):
    """stdout for one command: writes that fail are dropped and remembered, never raised."""

    def __init__(self, stream: TextIO | None = None, name: str = "xecr") -> None:
        super().__init__()
        self._stream = stream if stream is not None else sys.stdout
        self._name = name
        self.failure: str | None = None if self._stream is not None else "stdout is closed"

    def write(self, text: str) -> int:
        if self.failure is None:
            assert self._stream is not None
            try:
                self._stream.write(text)
            except (OSError, ValueError) as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            assert self._stream is not None
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def finish(self) -> bool:
        """Flush; True when everything written reached stdout. Says why not, once."""
        self.flush()
        if self.failure is not None:
            say(f"{self._name}: cannot write the output: {self.failure}")
            return False
        return True

    def _fail(self, exc: OSError | ValueError) -> None:
        self.failure = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if self._stream is not None:
            _silence(self._stream)
