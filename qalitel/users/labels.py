"""Names as pages show them: the profiles, and the pseudonyms of erased accounts
(:mod:`qalitel.pseudonyms`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from qalitel.pseudonyms import PSEUDONYM_PREFIX, translate_pseudonyms
from qalitel.users.models import Profile

PROFILE_LABELS = {Profile.USER: _l("User"), Profile.MANAGER: _l("Manager"),
                  Profile.ADMIN: _l("Administrator")}

__all__ = ["PROFILE_LABELS", "PSEUDONYM_PREFIX", "translate_pseudonyms"]
