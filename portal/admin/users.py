"""User management for administrators: create, deactivate, change role, reset password."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_login import login_user

from portal.accounts import users as accounts
from portal.accounts.auth import mark_session_started, role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    arg_text,
    form_page,
    like,
    me,
    page_arg,
    per_page,
)
from portal.admin.forms import NewUserForm, PasswordResetForm, UserForm
from portal.core.statuses import Role
from portal.extensions import db
from portal.models import User
from portal.validation import FieldErrors, InputError

ROLE_CHOICES = [
    (Role.ADMIN.value, "Administrator: set-up, review, approve, users"),
    (Role.FINANCE.value, "Finance: exports, ERP settings, read everything"),
    (Role.VIEWER.value, "Viewer: read everything, change nothing"),
]


@bp.route("/users")
@role_required(*ADMINS)
def users():
    """Every back-office user, searchable and paginated."""
    q = arg_text("q")
    stmt = sa.select(User).order_by(User.active.desc(), User.name)
    if q:
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(User.name).like(like(q), escape="\\"),
                sa.func.lower(User.email).like(like(q), escape="\\"),
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    return render_template("admin/users.html", pagination=pagination, q=q)


def _parse(form: UserForm) -> accounts.UserInput:
    data = accounts.UserInput(
        email=form.email.data,
        name=form.name.data,
        role=form.role.data,
        active=form.active.data,
    )
    if isinstance(form, NewUserForm):
        data.password = form.password.data
    return data


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def user_new():
    """Create a back-office user."""
    if request.method == "GET":
        return render_template(
            "admin/user_form.html",
            user=None,
            values={"role": "viewer", "active": "1"},
            errors={},
            roles=ROLE_CHOICES,
        )
    form = NewUserForm()
    if form.check():
        data = _parse(form)
        try:
            user = accounts.create_user(me(), data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            db.session.commit()
            flash(f"{user.name} can now sign in as {user.role}.", "success")
            return redirect(url_for("admin.users"))
    return form_page("admin/user_form.html", form, user=None, roles=ROLE_CHOICES)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def user_edit(user_id: int):
    """Change a user's name, email, role or active flag."""
    user = db.get_or_404(User, user_id)
    if request.method == "GET":
        values = {
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "active": "1" if user.active else "",
        }
        return render_template(
            "admin/user_form.html",
            user=user,
            values=values,
            errors={},
            roles=ROLE_CHOICES,
        )
    form = UserForm()
    if form.check():
        data = _parse(form)
        try:
            accounts.update_user(me(), user, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("admin.user_edit", user_id=user_id))
        else:
            db.session.commit()
            flash(f"{user.name} was updated.", "success")
            return redirect(url_for("admin.users"))
    return form_page("admin/user_form.html", form, user=user, roles=ROLE_CHOICES)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@role_required(*ADMINS)
def user_reset_password(user_id: int):
    """Set a new password for a user: it unlocks the account and ends its sessions."""
    user = db.get_or_404(User, user_id)
    form = PasswordResetForm()
    form.check()
    try:
        accounts.reset_password(me(), user, form.password.data)
    except FieldErrors as exc:
        db.session.rollback()
        flash(f"Password not changed: {exc.errors.get('password')}", "danger")
        return redirect(url_for("admin.user_edit", user_id=user_id))
    db.session.commit()
    if user.id == me().id:
        # Your own reset: stay signed in here, every other session ends.
        login_user(user)
        mark_session_started()
    flash(
        f"New password set for {user.name}; their sessions were signed out.",
        "success",
    )
    return redirect(url_for("admin.users"))
