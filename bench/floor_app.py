"""The floor of the warm benchmark: a bare Flask + SQLAlchemy view of the record list.

One plain engine (``FLOOR_DATABASE_URL``: the SAME tenant role and database the app uses,
``FLOOR_POOL_SIZE`` connections, no overflow) and one view at ``/t/<slug>/records/`` that
reads what the app's list page shows — the count, then the newest 25 non-conformities with
number, title, status, severity, detection date, folder (and whether confidential), assignee
and whether an action is overdue — and renders them with a small Jinja template. No
sign-in, session, preferences, CSRF, translations, tenant resolution or identity check:
what any Flask view of those rows costs. ``/healthz`` answers for the harness.

    gunicorn -c gunicorn.conf.py -w 2 --threads 4 bench.floor_app:app
"""

from __future__ import annotations

import os
from datetime import date

from flask import Flask, abort
from sqlalchemy import create_engine, text

if not os.environ.get("FLOOR_DATABASE_URL"):
    raise RuntimeError("FLOOR_DATABASE_URL (the tenant's own database URL) is required")
app = Flask(__name__)
engine = create_engine(os.environ["FLOOR_DATABASE_URL"],
                       pool_size=int(os.environ.get("FLOOR_POOL_SIZE", "4")), max_overflow=0)
SLUG = os.environ.get("FLOOR_SLUG", "")
PAGE = 25

COUNT = text("SELECT count(*) FROM nonconformities")
ROWS = text("""
    SELECT nc.id, nc.number, nc.title, nc.status, nc.severity, nc.detected_on,
           f.name AS folder_name, f.confidential, u.name AS assignee_name,
           EXISTS (SELECT 1 FROM actions a WHERE a.record_id = nc.id
                   AND a.due_date IS NOT NULL AND a.due_date < :today
                   AND a.status NOT IN ('done', 'cancelled')) AS overdue
    FROM nonconformities nc
    LEFT JOIN folders f ON nc.folder_id = f.id
    LEFT JOIN users u ON nc.assignee_id = u.id
    ORDER BY nc.number DESC LIMIT :page""")

PAGE_TEMPLATE = app.jinja_env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Non-conformities</title></head>
<body><main><h1>Non-conformities</h1>
<table><caption>{{ total }} non-conformities</caption>
<thead><tr><th>Number</th><th>Title</th><th>Status</th><th>Severity</th><th>Detected on</th>
<th>Folder</th><th>Assignee</th></tr></thead>
<tbody>
{% for r in rows %}<tr><td>NC-{{ r.number }}</td>
<td><a href="/t/{{ slug }}/records/{{ r.id }}">{{ r.title }}</a>
{% if r.overdue %}<span class="badge danger">Overdue actions</span>{% endif %}</td>
<td>{{ r.status|capitalize }}</td><td><span class="badge">{{ r.severity|capitalize }}</span></td>
<td>{{ r.detected_on.strftime('%d/%m/%Y') }}</td>
<td>{{ r.folder_name or '' }}
{%- if r.confidential %} <span class="badge">Confidential</span>{% endif %}</td>
<td>{{ r.assignee_name or '' }}</td></tr>
{% endfor %}</tbody></table></main></body></html>""")


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.get("/t/<slug>/records/")
def records(slug: str) -> str:
    if slug != SLUG:
        abort(404)
    with engine.connect() as conn:
        total = conn.execute(COUNT).scalar()
        rows = conn.execute(ROWS, {"today": date.today(), "page": PAGE}).all()
    return PAGE_TEMPLATE.render(total=total, rows=rows, slug=slug)
