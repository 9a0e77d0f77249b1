"""Admin: users and roles, tenant settings, provider status, API keys, outgoing webhooks, the
suppression list, the audit log, and for owners the organisations of the installation."""

from __future__ import annotations

import streamlit as st

from core import admin
from core.permissions import Permission
from pages.admin_sections import (
    api_keys,
    audit,
    organisations,
    outgoing_webhooks,
    settings,
    suppressions,
    users,
    webhooks,
)
from pages.common import get_db, get_settings, require_page

actor = require_page(Permission.manage_users)
db = get_db()
st.title("Admin")
owner_tabs = ["Organisations"] if admin.manages_organisations(db, actor) else []
(users_tab, settings_tab, providers_tab, api_keys_tab, webhooks_tab, suppressions_tab, audit_tab,
 *owner_tab) = st.tabs(["Users", "Settings", "Providers", "API keys", "Webhooks", "Suppression list",
                        "Audit log", *owner_tabs])
with users_tab:
    users.show(db, actor)
# The roles that may open this page (admin, owner) hold every permission its tabs need; the
# services check them again.
with settings_tab:
    settings.show(db, actor)
with providers_tab:
    st.caption("Set in the environment or .streamlit/secrets.toml; secrets are never shown.")
    st.container(key="admin_providers").dataframe(admin.provider_status_table(get_settings(), actor),
                                                  hide_index=True)
    webhooks.show(get_settings())
with api_keys_tab:
    api_keys.show(db, actor)
with webhooks_tab:
    outgoing_webhooks.show(db, actor)
with suppressions_tab:
    suppressions.show(db, actor)
with audit_tab:
    audit.show(db, actor)
if owner_tab:
    with owner_tab[0]:
        organisations.show(db, actor)
