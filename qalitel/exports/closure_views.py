"""``/closure-export/<token>``: a closed tenant's export, for its administrators, outside the
tenant (whose pages answer 410). The token alone opens it (no sign-in is possible any more);
tokens are random (256 bits), stored as SHA-256, looked up by that hash and compared with
``hmac.compare_digest``. Every attempt counts against a per-address limit
(``CLOSURE_EXPORT_LIMIT_PER_ADDRESS``); 404 for an unknown token, 410 once the link has
expired or the data was purged."""

from __future__ import annotations

import hmac
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_file

from core import throttle as store
from qalitel.exports.closure import KIND
from qalitel.exports.jobs import aware, find_by_token, is_expired, token_hash
from qalitel.exports.models import ExportState

bp = Blueprint("closure_export", __name__)

LIMIT_KEY = "CLOSURE_EXPORT_LIMIT_PER_ADDRESS"
DEFAULT_LIMIT = "10 per minute;60 per hour"


def _throttle():
    limits = current_app.config.get(LIMIT_KEY, DEFAULT_LIMIT)
    try:
        store.of_app().acquire(store.charges(LIMIT_KEY, "addr:" + store.request_address(), limits))
    except store.Throttled as exc:
        return store.too_many(int(exc.retry_after or 1))
    return None


@bp.get("/closure-export/<token>")
def download(token: str):
    refused = _throttle()
    if refused is not None:
        return refused
    job = find_by_token(token)
    if (job is None or job.kind != KIND or job.token_hash is None
            or not hmac.compare_digest(job.token_hash, token_hash(token))):
        abort(404)
    path = Path(job.file_path) if job.file_path else None
    if (is_expired(job) or job.state is not ExportState.READY or path is None
            or not path.is_file()):
        return render_template("exports/closure_gone.html", until=aware(job.expires_at)), 410
    response = send_file(path, mimetype="application/zip", as_attachment=True,
                         download_name=f"closure-export-{aware(job.finished_at):%Y-%m-%d}.zip",
                         max_age=0, conditional=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.config.setdefault(LIMIT_KEY, DEFAULT_LIMIT)
    store.parse_limits(app.config[LIMIT_KEY])
    app.register_blueprint(bp)
