"""Text from users (names, paths, what a file holds) as a terminal shows it: control characters as visible escapes.

A name that reaches a terminal raw could clear the screen, retitle the window or hide what
follows (``ESC``, ``CSI``, ``BEL``, a carriage return, a bidirectional override); shown as
``\\x1b`` it is harmless and still recognisable.
"""

from __future__ import annotations

import re

from rich.markup import escape

CONTROL = r"\x00-\x1f\x7f-\x9f"  # C0 (NUL included), DEL, C1: a regex character class's ranges
_OTHERS = r"\u202a-\u202e\u2066-\u2069\ud800-\udfff"  # bidirectional overrides; undecodable bytes (surrogate escapes)
_HIDDEN = re.compile(f"[{CONTROL}{_OTHERS}]")
_HIDDEN_IN_LINES = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_OTHERS}]")  # the same but tab and newline


def visible(text: str, lines: bool = True) -> str:
    """``text`` with every control character as an escape (``\\x1b``, ``\\u202e``); ``lines`` keeps tabs and newlines."""
    return (_HIDDEN_IN_LINES if lines else _HIDDEN).sub(_escape, text)


def plain(text: str) -> str:
    """``text`` for rich's ``print``: control characters visible and markup escaped, so it prints exactly as written."""
    return escape(visible(text))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
