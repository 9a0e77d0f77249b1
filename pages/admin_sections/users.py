"""Admin page, users: the team, inviting with a one-time password, role, activation, unlock,
and resetting a password to a one-time one."""

from __future__ import annotations

import streamlit as st

from core import admin
from core.auth import UserView
from core.db import Database
from core.models import Role
from core.permissions import Actor, Permission
from pages.common import run_action, user_errors

FLASH_KEY = "admin_users_flash"


def _invite_form(db: Database, actor: Actor, grantable: list[str]) -> None:
    with st.form("invite", clear_on_submit=True):
        st.markdown("**Invite a user**")
        username = st.text_input("Username", key="invite_username")
        name = st.text_input("Name", key="invite_name")
        email = st.text_input("Email", key="invite_email")
        role = st.selectbox("Role", grantable, index=grantable.index(Role.analyst.value), key="invite_role")
        if not st.form_submit_button("Invite"):
            return
        invitation = run_action(
            admin.invite_user, db, actor, username=username, name=name, email=email, role=role
        )
        if invitation is not None:
            st.success(
                f"Invited {invitation.user.username} as {invitation.user.role}. "
                "Give them this initial password now: it is shown only once."
            )
            st.code(invitation.initial_password, language=None)


def _change_user(db: Database, actor: Actor, grantable: list[str], team: list[UserView]) -> bool:
    """The picker and its actions; True when a user changed in this run without a rerun."""
    users = {u.id: u for u in team}
    st.markdown("**Change a user**")
    # Labels from a dict, not a lambda: widget settings must pickle (serializable session state).
    labels = {u.id: f"{u.username} ({u.role})" for u in users.values()}
    picked = st.selectbox("User", list(users), key="manage_user", format_func=labels.__getitem__)
    user = users[picked]
    role_column, active_column, unlock_column, reset_column = st.columns(4)
    new_role = role_column.selectbox(
        "New role",
        grantable,
        key="manage_role",
        index=grantable.index(user.role) if user.role in grantable else 0,
    )
    toggle = "Reactivate" if not user.active else "Deactivate"
    done = None
    if (
        role_column.button("Change role", key="manage_change_role")
        and run_action(admin.change_role, db, actor, user.id, new_role) is not None
    ):
        done = f"{user.username} is now {new_role}."
    if (
        active_column.button(toggle, key="manage_toggle_active")
        and run_action(admin.set_user_active, db, actor, user.id, not user.active) is not None
    ):
        done = f"{user.username} is {toggle.lower()}d."
    if unlock_column.button("Unlock", key="manage_unlock"):
        with user_errors():
            admin.unlock_user(db, actor, user.id)
            done = f"{user.username} is unlocked."
    if reset_column.button(
        "Reset password",
        key="manage_reset_password",
        help="Signs the user out everywhere and gives them a one-time password "
        "to replace at their next sign-in.",
    ):
        reset = run_action(admin.reset_password, db, actor, user.id)
        if reset is not None:
            # Shown in this run only (no rerun): the password is never stored in the session.
            st.success(
                f"{reset.user.username}'s password is reset and every sign-in of theirs has "
                "ended. Give them this one-time password now: it is shown only once, and "
                "they choose their own when they sign in."
            )
            st.code(reset.temporary_password, language=None)
            return True
    if done:
        # Run again so the picker and the buttons show the user as they are now.
        st.session_state[FLASH_KEY] = done
        st.rerun()
    return False


def show(db: Database, actor: Actor) -> None:
    grantable = [r.value for r in Role if r is not Role.owner or actor.can(Permission.manage_owners)]
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    table = st.container()
    _invite_form(db, actor, grantable)
    # Read after the invitation form, so a user invited in this run is already listed.
    team = admin.list_users(db, actor)
    if _change_user(db, actor, grantable, team):
        team = admin.list_users(db, actor)  # a reset shows in the table of this run
    table.dataframe(admin.users_table(team), hide_index=True)
