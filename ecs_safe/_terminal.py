"""Server-provided text made inert before it reaches a terminal.

An endpoint (or anything between it and us) chooses the text of error messages, instance IDs,
task groups and more. Printed raw, an ESC sequence in one of them can move the cursor, recolour
or rewrite what is on screen: a ``failed`` row made to read "deregistered". `inert` is the one
function every printer (the CLI's tables and lines, the console log renderer) passes such text
through; JSON output does not need it (JSON escapes control characters itself).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["inert"]

# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F: CSI is U+009B).
# Also the bidirectional overrides and isolates, which reorder what a terminal shows.
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    r"""``text`` with every control character but ``\n`` and ``\t`` shown as an escape.

    ``"\x1b[2K"`` becomes the six visible characters ``\x1b[2K``; printable text, including
    any non-ASCII letter, is unchanged, so an ID or an ARN reads exactly as ECS returned it.
    """
    return _CONTROLS.sub(_visible, text)
