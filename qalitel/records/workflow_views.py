"""The client admin's page of workflow rules (who may make each move), at
``/t/<slug>/admin/workflow``, on the records blueprint."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _

from core.web import admin_required
from qalitel.records import service
from qalitel.records.forms import WorkflowRulesForm
from qalitel.records.models import WORKFLOW_STEPS
from qalitel.records.rules import workflow_rules
from qalitel.records.web import bp, me, render


def _page(form: WorkflowRulesForm, status: int = 200):
    return render("records/workflow_rules.html", status, form=form, steps=WORKFLOW_STEPS)


@bp.route("/admin/workflow", methods=["GET", "POST"])
@admin_required
def workflow_rules_page():
    current = workflow_rules()
    form = WorkflowRulesForm(data={step: sorted(current[step]) for step in WORKFLOW_STEPS})
    if form.validate_on_submit():
        wanted = {step: form[step].data or [] for step in WORKFLOW_STEPS}
        try:
            changed = service.save_rules(me(), wanted)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Workflow rules saved.") if changed else _("Nothing to change."),
                  "success")
            return redirect(url_for("tenant.records.workflow_rules_page"), 303)
    return _page(form, 400 if form.is_submitted() else 200)
