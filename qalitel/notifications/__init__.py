"""Mail that reminds people of their work: on assignment, before an action's due date, when
it is overdue, and a weekly digest. Each is recorded (``models.Notification``) and shown to
the client admins; timing comes from the tenant's settings and each user's preferences.

``assignment`` is called by the record services; ``schedule`` is the ``notifications`` job;
``delivery`` sends and records; ``compose`` writes the mail; ``views`` hold the admin page
and the preferences section."""

from qalitel.notifications.assignment import notify_assignment
from qalitel.records import events

events.on_assignment(notify_assignment)

__all__ = ["notify_assignment"]
