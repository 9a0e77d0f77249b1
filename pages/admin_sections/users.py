"""Admin page, users: the team, inviting with a one-time password, role, activation, unlock,
and resetting a password to a one-time one."""

from __future__ import annotations

import streamlit as st

from core import admin
from core.auth import UserView
from core.db import Database
from core.models import Role
from core.permissions import ROLE_PERMISSIONS, Actor, Permission
from pages.common import run_action, user_errors
from pages.registry import is_lower, lost_by
from pages.widgets import id_select

FLASH_KEY = "admin_users_flash"
# The role a user asked to give herself, lower than her own, until she confirms or keeps hers.
DEMOTION_KEY = "admin_users_confirm_demotion"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _demotion_warning(old: Role, new: Role) -> str:
    pages, abilities = lost_by(old, new)
    lose = f"You lose the {_listed(pages)} page{'s' if len(pages) > 1 else ''}, and" if pages else "You"
    back = "another owner" if old is Role.owner else "an admin or an owner"
    return (
        f"Change your own role from {old.value} to {new.value}? {lose} may no longer "
        f"{_listed(abilities)}. Only {back} can give {'them' if len(abilities) > 1 else 'it'} back."
    )


def _confirm_demotion(db: Database, actor: Actor, user: UserView, new_role: str) -> str | None:
    """The confirmation of a lower role for oneself; what happened once confirmed."""
    if st.session_state.get(DEMOTION_KEY) != new_role:
        return None
    st.warning(_demotion_warning(Role(user.role), Role(new_role)))
    yes, no = st.columns(2)
    if yes.button("Yes, change my role", key="manage_demote_confirm", type="primary"):
        st.session_state.pop(DEMOTION_KEY, None)
        if run_action(admin.change_role, db, actor, user.id, new_role) is not None:
            if Permission.manage_users not in ROLE_PERMISSIONS[Role(new_role)]:
                st.rerun()  # this page is no longer hers: the next run says so, and why
            return f"You are now {new_role}."
    if no.button("Keep my role", key="manage_demote_keep"):
        st.session_state.pop(DEMOTION_KEY, None)
        st.rerun()
    return None


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
    labels = {u.id: f"{u.username} ({u.role})" for u in users.values()}
    # By id: the label holds the role, which a change of role changes under the picker.
    user = users[id_select.show("User", "manage_user", labels, default=next(iter(labels)))]
    role_column, active_column, unlock_column, reset_column = st.columns(4)
    new_role = role_column.selectbox(
        "New role",
        grantable,
        key="manage_role",
        index=grantable.index(user.role) if user.role in grantable else 0,
    )
    toggle = "Reactivate" if not user.active else "Deactivate"
    done = None
    if role_column.button("Change role", key="manage_change_role"):
        if user.id == actor.user_id and is_lower(Role(new_role), Role(user.role)):
            # Asked below, before anything changes; a change core refuses is refused at once.
            if run_action(admin.change_role, db, actor, user.id, new_role, check_only=True) is not None:
                st.session_state[DEMOTION_KEY] = new_role
        elif run_action(admin.change_role, db, actor, user.id, new_role) is not None:
            done = f"{user.username} is now {new_role}."
    if user.id != actor.user_id or new_role == user.role:
        st.session_state.pop(DEMOTION_KEY, None)  # another user or role picked since: nothing to confirm
    else:
        done = _confirm_demotion(db, actor, user, new_role) or done
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
    table.container(key="admin_users").dataframe(admin.users_table(team), hide_index=True)
