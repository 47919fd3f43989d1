"""How the CLI prints failures: one line, whatever the message holds."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Docker shows the helper's stdout as is: never let a message span lines."""
    return " ".join(text.split("\n")).replace("\r", " ")
