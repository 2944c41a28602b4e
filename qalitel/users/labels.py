"""Names as pages show them: the profiles, and the pseudonyms of erased accounts.

A tombstone's name, and the mentions that replaced the person's name in free text, are
stored as "Former user 7F3A"; every rendered value (and each cell of a CSV export) shows
them in the reader's language ("Ancien utilisateur 7F3A" in French).
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from qalitel.users.models import Profile

PROFILE_LABELS = {Profile.USER: _l("User"), Profile.MANAGER: _l("Manager"),
                  Profile.ADMIN: _l("Administrator")}

PSEUDONYM_PREFIX = "Former user"
_PSEUDONYM = re.compile(re.escape(PSEUDONYM_PREFIX) + r" ([0-9A-F]{4,16})\b")


def translate_pseudonyms(value: Any) -> Any:
    if not isinstance(value, str) or PSEUDONYM_PREFIX not in value:
        return value
    for code in dict.fromkeys(_PSEUDONYM.findall(value)):
        # str.replace, or Markup.replace, which escapes what it puts in: safe either way
        value = value.replace(f"{PSEUDONYM_PREFIX} {code}", _("Former user %(code)s", code=code))
    return value
