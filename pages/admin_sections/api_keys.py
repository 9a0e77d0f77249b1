"""Admin page, API keys: create a key for a machine (shown once), see the keys and revoke them,
as `python -m core.cli api-keys` and `/api/v1/api-keys` do."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.api_keys import (
    ApiKeyView,
    create_api_key,
    grantable_key_roles,
    key_state,
    list_api_keys,
    revoke_api_key,
)
from core.db import Database
from core.models import Role
from core.permissions import Actor
from pages.common import md, run_action
from pages.widgets import id_select

COLUMNS = ["name", "prefix", "role", "state", "created", "last used", "expires"]


def _create_form(db: Database, actor: Actor) -> None:
    roles = [role.value for role in grantable_key_roles(actor)]
    with st.form("api_key_create", clear_on_submit=True):
        st.markdown("**Create an API key** for a machine: a CRM, a script, a scheduler")
        name_column, role_column, expiry_column = st.columns([3, 1, 1])
        name = name_column.text_input("Name", key="api_key_name", placeholder="CRM sync")
        default = roles.index(Role.manager.value) if Role.manager.value in roles else 0
        role = role_column.selectbox(
            "Role",
            roles,
            index=default,
            key="api_key_role",
            help="What the key may do, as a person of this role. At most your own.",
        )
        days = expiry_column.number_input(
            "Expires after (days)",
            min_value=0,
            max_value=3650,
            value=90,
            step=1,
            key="api_key_days",
            help="0: until it is revoked.",
        )
        if not st.form_submit_button("Create the key"):
            return
    created = run_action(create_api_key, db, actor, name=name, role=role, expires_days=float(days) or None)
    if created is None:
        return
    # Shown in this run only: the key is stored as a hash and never kept in the session.
    st.success(
        f"The key {md(created.key.name)} is created. Copy it now (the icon at the right of the "
        "box copies it): it is shown only this once. Send it as the X-API-Key header."
    )
    st.code(created.secret, language=None)


def _table(keys: list[ApiKeyView]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": k.name,
                "prefix": k.prefix,
                "role": k.role,
                "state": key_state(k),
                "created": k.created_at,
                "last used": k.last_used_at,
                "expires": k.expires_at,
            }
            for k in keys
        ],
        columns=COLUMNS,
    )


def _revoke(db: Database, actor: Actor, keys: list[ApiKeyView]) -> bool:
    live = [k for k in keys if not k.revoked]
    if not live:
        return False
    labels = {k.id: f"{k.name} ({k.prefix}, {k.role})" for k in live}
    picked = id_select.show("Key to revoke", "api_key_revoke_pick", labels, default=live[0].id)
    if not st.button("Revoke the key", key="api_key_revoke"):
        return False
    revoked = run_action(revoke_api_key, db, actor, key_id=picked)
    if revoked is None:
        return False
    st.success(f"The key {md(revoked.name)} is revoked: requests with it are refused from now on.")
    return True


def show(db: Database, actor: Actor) -> None:
    _create_form(db, actor)
    keys = run_action(list_api_keys, db, actor)
    if keys is None:
        return
    table = st.container(key="api_keys_table")
    if _revoke(db, actor, keys):
        keys = list_api_keys(db, actor)
    if not keys:
        st.caption("No API keys yet.")
    table.dataframe(_table(keys), hide_index=True)
