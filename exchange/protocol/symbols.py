"""The symbol format: 1 to 32 capital letters, digits, '.', '_' or '-' — for an instrument, in a
request, in a WebSocket path, in a research configuration. (The engine checks the same rule on
its side: `engine_rs/src/feed.rs`, `valid_symbol`.)"""

from __future__ import annotations

import re

SYMBOL_MAX = 32
SYMBOL_CHARACTERS = "A-Z0-9._-"  # as a regular expression's character class
SYMBOL_PATTERN = rf"^[{SYMBOL_CHARACTERS}]{{1,{SYMBOL_MAX}}}$"
SYMBOL_RULE = f"Use 1-{SYMBOL_MAX} characters: capital letters, digits, '.', '_' or '-'."

_SYMBOL = re.compile(SYMBOL_PATTERN)


def is_symbol(text: object) -> bool:
    return isinstance(text, str) and _SYMBOL.match(text) is not None
