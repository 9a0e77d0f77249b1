"""Admin page, organisations (owners only): the installation's tenants, and creating one with its
first user, as `python -m core.cli tenants create` and `users create` do."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import admin
from core.db import Database
from core.models import Role
from core.permissions import Actor
from pages.common import md, run_action

FIRST_ROLES = [role.value for role in admin.FIRST_USER_ROLES]


def _create_form(db: Database, actor: Actor) -> None:
    with st.form("organisation_create", clear_on_submit=True):
        st.markdown("**Create an organisation**")
        name_column, country_column = st.columns([3, 1])
        name = name_column.text_input("Organisation name", key="organisation_name")
        country = country_column.text_input("Default country (ISO code)", "US", key="organisation_country",
                                            help="Phone numbers without a country code are read as "
                                            "numbers of this country.")
        st.markdown("Its first user, who invites the rest of their team:")
        username_column, name_column, email_column, role_column = st.columns(4)
        username = username_column.text_input("Username", key="organisation_username")
        user_name = name_column.text_input("Name", key="organisation_user_name")
        email = email_column.text_input("Email", key="organisation_email")
        role = role_column.selectbox("Role", FIRST_ROLES, index=FIRST_ROLES.index(Role.admin.value),
                                     key="organisation_role",
                                     help="An owner may also make owners and create organisations.")
        if not st.form_submit_button("Create the organisation"):
            return
    created = run_action(admin.create_organisation, db, actor, name=name, default_country=country,
                         username=username, user_name=user_name, email=email, role=role)
    if created is None:
        return
    user = created.invitation.user
    st.success(
        f"{md(created.tenant.name)} is created, with {md(user.username)} as its {user.role}. Give "
        "them this initial password now: it is shown only once. They sign in with it (and the "
        f"organisation {md(created.tenant.name)} if their username is used elsewhere too), then "
        "choose their own."
    )
    st.code(created.invitation.initial_password, language=None)


def show(db: Database, actor: Actor) -> None:
    _create_form(db, actor)
    organisations = run_action(admin.list_organisations, db, actor)
    if organisations is not None:
        st.container(key="organisations_table").dataframe(
            pd.DataFrame([{"organisation": t.name, "default country": t.default_country,
                           "users": t.users, "created": t.created_at} for t in organisations],
                         columns=["organisation", "default country", "users", "created"]),
            hide_index=True,
        )
