"""Text as search compares it: one normaliser for what is stored and what is asked.

:func:`fold` maps "RÉCLAMATION", "réclamation" and "reclamation" to the same string, and so
"Œil" and "oeil", "Ærosol" and "aerosol", "Straße" and "strasse": compatibility decomposition
(NFKD, so "ﬁ" is "fi" and a full-width letter its plain one), marks dropped, case folded,
ligatures and letters without a decomposition spelled out, control and format characters
removed, whitespace collapsed. Records store ``fold`` of their searched fields and a query is
folded the same way, so both databases compare plain strings the same way.
"""

from __future__ import annotations

import unicodedata

# Letters NFKD leaves whole, as French and its neighbours write them without the sign.
_SPELLED = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l",
                          "ı": "i", "ð": "d", "þ": "th", "ħ": "h", "ŀ": "l"})
_DROPPED = frozenset({"Mn", "Me", "Cf"})  # combining marks, format (zero-width, bidi)
_BLANK = frozenset({"Cc", "Zs", "Zl", "Zp"})  # controls and separators: word breaks


def fold(text: str | None) -> str:
    """``text`` as search compares it (see the module docstring); '' for None."""
    if not text:
        return ""
    # Unicode's compatibility caseless match: NFKD(casefold(NFKD(text))).
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category in _DROPPED:
            continue
        kept.append(" " if category in _BLANK else char)
    return " ".join("".join(kept).translate(_SPELLED).split())
