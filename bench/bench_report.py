"""Time to build a record's PDF and its 8D report (WeasyPrint), through the app as a client
admin asks for them: a typical record (4 actions) and an oversize one (``--actions`` actions
with long criteria, texts of 19,000 characters, 300 changes), whose report lays out only a
bounded part (``qalitel.reports.content``: ACTIONS_MAX, HISTORY_MAX, TEXT_SHOWN_MAX). Prints
the median of ``--runs`` requests of each, and the ratio oversize / typical. Nothing is
asserted: this reports.

    .venv/bin/python bench/bench_report.py [--actions 1500] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "bench password 1234"


def seed(app, actions: int) -> tuple[int, int]:
    """The tenant with a typical and an oversize record; their ids."""
    from sqlalchemy import insert

    from qalitel.records.models import Action, NonConformity, RecordHistory
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant

    settings = app.extensions["qalitel_settings"]
    made = create_tenant(settings, "bench", "Bench Company", "admin@bench.example", PASSWORD)
    with tenant_context(TenantInfo.from_row(made.tenant)) as ctx:
        session = ctx.session
        session.execute(insert(NonConformity), [
            {"number": 1, "title": "Scratched housing", "description": "Found at inspection.",
             "cause_analysis": "Worn fixture."},
            {"number": 2, "title": "Oversize record", "description": "d" * 19000,
             "cause_analysis": "c" * 19000, "immediate_action": "i" * 19000}])
        session.execute(insert(Action), [
            {"record_id": 1, "title": f"Typical action {n}", "kind": "corrective"}
            for n in range(4)] + [
            {"record_id": 2, "title": f"Long action {n}", "kind": "corrective",
             "description": "a" * 2000, "effectiveness_criteria": "k" * 1800}
            for n in range(actions)])
        session.execute(insert(RecordHistory), [
            {"record_id": 2, "field": "title", "old_value": "o" * 300, "new_value": "n" * 300}
            for _ in range(300)])
        session.commit()
    return 1, 2


def median_seconds(client, url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from qalitel import create_app
    from tenants.service import init_platform
    from tenants.templates import ensure_sqlite_template

    with tempfile.TemporaryDirectory(prefix="qalitel-bench-report-") as folder:
        app = create_app({"instance_dir": Path(folder) / "instance"})
        with app.app_context():
            init_platform()
            ensure_sqlite_template(app.extensions["qalitel_settings"])
            typical, oversize = seed(app, args.actions)
        client = app.test_client()
        page = client.get("/t/bench/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post("/t/bench/login", data={"csrf_token": token,
                                            "email": "admin@bench.example",
                                            "password": PASSWORD})
        client.get(f"/t/bench/records/{typical}/pdf")  # loads WeasyPrint once
        print(f"{args.actions} actions on the oversize record, median of {args.runs} runs")
        for kind in ("pdf", "8d.pdf"):
            small = median_seconds(client, f"/t/bench/records/{typical}/{kind}", args.runs)
            big = median_seconds(client, f"/t/bench/records/{oversize}/{kind}", args.runs)
            print(f"{kind:7} typical {small:.2f} s, oversize {big:.2f} s, "
                  f"ratio {big / small:.1f}")


if __name__ == "__main__":
    main()
