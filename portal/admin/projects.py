"""Projects: list, create, edit, view (SPEC §2)."""

from typing import Any

import sqlalchemy as sa
from flask import render_template, request
from sqlalchemy.orm import contains_eager

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    arg_text,
    done,
    form_page,
    like,
    me,
    page_arg,
    pct_text,
    per_page,
    scheduled_totals,
)
from portal.admin.forms import (
    CURRENCY_CHOICES,
    TERMINOLOGY_CHOICES,
    ProjectForm,
    time_zones,
)
from portal.core.statuses import (
    CommitmentStatus,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    ClientContract,
    Commitment,
    Project,
    Vendor,
    commitment_contacts,
)
from portal.validation import FieldErrors
from portal.web.sorting import SortSpec, paginate


@bp.route("/projects")
@role_required(*READERS)
def projects():
    """Every project, searchable and paginated."""
    q = arg_text("q")
    stmt = sa.select(Project).order_by(Project.number)
    if q:
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Project.number).like(like(q), escape="\\"),
                sa.func.lower(Project.name).like(like(q), escape="\\"),
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    ids = [p.id for p in pagination.items]
    counts = dict(
        db.session.execute(
            sa.select(Commitment.project_id, sa.func.count(Commitment.id))
            .where(Commitment.project_id.in_(ids))
            .group_by(Commitment.project_id)
        ).all()
    )
    open_periods = {
        p.project_id: p
        for p in db.session.scalars(
            sa.select(BillingPeriod).where(
                BillingPeriod.project_id.in_(ids),
                BillingPeriod.status == PeriodStatus.OPEN,
            )
        )
    }
    return render_template(
        "admin/projects.html",
        pagination=pagination,
        q=q,
        counts=counts,
        open_periods=open_periods,
    )


def _parse_project(form: ProjectForm) -> domain.ProjectInput:
    form.validate()
    return domain.ProjectInput(
        number=form.number.data,
        name=form.name.data,
        currency=form.currency.data,
        address=form.address.data,
        time_zone=form.time_zone.data,
        overbilling_allowed=form.overbilling_allowed.data,
        late_submissions_allowed=form.late_submissions_allowed.data,
        retainage_release_allowed=form.retainage_release_allowed.data,
        default_work_retainage_pct=form.default_work_retainage_pct.data,
        default_materials_retainage_pct=form.default_materials_retainage_pct.data,
        terminology=form.terminology.data or None,
        erp_job_number=form.erp_job_number.data or None,
        qb_customer_job=form.qb_customer_job.data or None,
    )


def _project_values(project: Project) -> dict[str, str]:
    return {
        "number": project.number,
        "name": project.name,
        "currency": project.currency,
        "address": project.address,
        "time_zone": project.time_zone,
        "overbilling_allowed": "1" if project.overbilling_allowed else "",
        "late_submissions_allowed": "1" if project.late_submissions_allowed else "",
        "retainage_release_allowed": "1" if project.retainage_release_allowed else "",
        "default_work_retainage_pct": pct_text(project.default_work_retainage_pct),
        "default_materials_retainage_pct": pct_text(
            project.default_materials_retainage_pct
        ),
        "terminology": project.terminology or "",
        "erp_job_number": project.erp_job_number or "",
        "qb_customer_job": project.qb_customer_job or "",
    }


def _project_form(project: Project | None):
    context: dict[str, Any] = {
        "project": project,
        "terminologies": TERMINOLOGY_CHOICES,
        "currencies": CURRENCY_CHOICES,
        "time_zones": sorted(time_zones()),
    }
    if request.method == "GET":
        values = (
            _project_values(project)
            if project
            else {
                "currency": "USD",
                "time_zone": "America/New_York",
                "default_work_retainage_pct": "10",
                "default_materials_retainage_pct": "0",
            }
        )
        return render_template(
            "admin/project_form.html", values=values, errors={}, **context
        )
    form = ProjectForm()
    data = _parse_project(form)
    if form.ok:
        try:
            saved = domain.save_project(me(), project, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            return done(
                f"Project {saved.number} saved.",
                "admin.project_view",
                project_id=saved.id,
            )
    return form_page("admin/project_form.html", form, **context)


@bp.route("/projects/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def project_new():
    """Create a project."""
    return _project_form(None)


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def project_edit(project_id: int):
    """Change a project's settings (audited)."""
    return _project_form(db.get_or_404(Project, project_id))


#: A project's commitments: the sortable columns.
COMMITMENT_SORTS = SortSpec(
    {
        "number": Commitment.number,
        "title": Commitment.title,
        "vendor": Vendor.name,
        "kind": Commitment.kind,
        "status": Commitment.status,
    },
    default="number",
    tiebreak=Commitment.id,
)


@bp.route("/projects/<int:project_id>")
@role_required(*READERS)
def project_view(project_id: int):
    """A project: its commitments (searchable), periods and client contracts."""
    project = db.get_or_404(Project, project_id)
    q = arg_text("q")
    status = arg_text("status", 16)
    where: list[Any] = [Commitment.project_id == project.id]
    if status in {s.value for s in CommitmentStatus}:
        where.append(Commitment.status == status)
    else:
        status = ""
    if q:
        where.append(
            sa.or_(
                sa.func.lower(Commitment.number).like(like(q), escape="\\"),
                sa.func.lower(Commitment.title).like(like(q), escape="\\"),
                sa.func.lower(Vendor.name).like(like(q), escape="\\"),
            )
        )
    count = sa.select(sa.func.count()).select_from(Commitment)
    if q:
        count = count.join(Vendor, Vendor.id == Commitment.vendor_id)
    sort = COMMITMENT_SORTS.parse(request.args)
    stmt = sort.apply(
        sa.select(Commitment)
        .join(Vendor, Vendor.id == Commitment.vendor_id)
        .options(contains_eager(Commitment.vendor))
        .where(*where)
    )
    pagination = paginate(
        stmt,
        Commitment.id,
        page=page_arg(),
        per_page=per_page(),
        count=count.where(*where),
    )
    args: dict[str, Any] = {"project_id": project.id}
    args.update({k: v for k, v in {"q": q, "status": status}.items() if v})
    ids = [c.id for c in pagination.items]
    contact_counts: dict[int, int] = dict(
        db.session.execute(
            sa.select(commitment_contacts.c.commitment_id, sa.func.count())
            .where(commitment_contacts.c.commitment_id.in_(ids))
            .group_by(commitment_contacts.c.commitment_id)
        ).all()
    )
    periods = db.session.scalars(
        sa.select(BillingPeriod)
        .where(BillingPeriod.project_id == project.id)
        .order_by(BillingPeriod.sequence.desc())
        .limit(6)
    ).all()
    contracts = db.session.scalars(
        sa.select(ClientContract)
        .where(ClientContract.project_id == project.id)
        .order_by(ClientContract.number)
    ).all()
    return render_template(
        "admin/project_view.html",
        project=project,
        pagination=pagination,
        q=q,
        status=status,
        sort=sort,
        args=args,
        totals=scheduled_totals(ids),
        contact_counts=contact_counts,
        periods=periods,
        contracts=contracts,
    )
