"""The profiles' names as pages show them."""

from flask_babel import lazy_gettext as _l

from qalitel.users.models import Profile

PROFILE_LABELS = {Profile.USER: _l("User"), Profile.MANAGER: _l("Manager"),
                  Profile.ADMIN: _l("Administrator")}
