"""Admin page, tenant settings: sending, compliance, the playbook, price overrides, the budget."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core import admin
from core.db import Database
from core.money import usd_to_microusd
from core.permissions import Actor
from pages.common import run_action, user_errors


def _general_form(db: Database, actor: Actor, current: admin.TenantSettings) -> None:
    with st.form("settings_general"):
        country = st.text_input("Default country (ISO code)", current.default_country,
                                key="settings_country")
        start_column, end_column = st.columns(2)
        window_start = start_column.text_input("Send window start (HH:MM, recipient's time)",
                                               current.quiet_hours_start, key="settings_start")
        window_end = end_column.text_input("Send window end (HH:MM)", current.quiet_hours_end,
                                           key="settings_end")
        weekdays = st.checkbox("Weekdays only", current.weekdays_only, key="settings_weekdays")
        sms_sender = st.text_input("SMS sender id", current.sms_sender_id or "",
                                   key="settings_sms_sender")
        email_sender = st.text_input("Email sender", current.email_sender or "",
                                     key="settings_email_sender")
        postal = st.text_area("Postal address (shown in emails)", current.postal_address or "",
                              key="settings_postal")
        allowed = st.text_area("Link allow-list (one domain per line)",
                               "\n".join(current.link_allow_list), key="settings_links")
        budget = st.text_input("Monthly budget (USD, blank for none)",
                               admin.microusd_as_dollars_text(current.monthly_budget_microusd),
                               key="settings_budget")
        if not st.form_submit_button("Save settings"):
            return
        with user_errors():
            admin.update_tenant_settings(db, actor, {
                "default_country": country, "quiet_hours_start": window_start,
                "quiet_hours_end": window_end, "weekdays_only": weekdays,
                "sms_sender_id": sms_sender, "email_sender": email_sender,
                "postal_address": postal, "link_allow_list": allowed,
                "monthly_budget_microusd": usd_to_microusd(budget),
            })
            st.success("Settings saved.")


def _playbook_form(db: Database, actor: Actor, current: admin.TenantSettings) -> None:
    with st.form("settings_playbook"):
        st.markdown("**Playbook**: value propositions and proof points per industry "
                    '(`"default"` applies to every industry).')
        playbook = st.text_area("Playbook (JSON)", json.dumps(current.playbook or admin.EMPTY_PLAYBOOK,
                                                              indent=2),
                                height=240, key="settings_playbook_json")
        if st.form_submit_button("Save playbook") and run_action(
                admin.update_tenant_settings, db, actor, {"playbook": playbook}) is not None:
            st.success("Playbook saved.")


def _prices_form(db: Database, actor: Actor, current: admin.TenantSettings) -> None:
    with st.form("settings_prices"):
        st.markdown("**Price overrides** in USD per 1M tokens; they replace the price table for "
                    "these models.")
        rows = pd.DataFrame(admin.price_override_rows(current.price_overrides),
                            columns=["model", "input", "output"])
        prices = st.data_editor(rows.astype({"model": "string", "input": "float64",
                                             "output": "float64"}),
                                num_rows="dynamic", hide_index=True, key="settings_prices_table")
        if not st.form_submit_button("Save prices"):
            return
        with user_errors():
            overrides = admin.price_overrides_from_rows(prices.to_dict("records"))
            admin.update_tenant_settings(db, actor, {"price_overrides": overrides})
            st.success("Price overrides saved.")


def show(db: Database, actor: Actor) -> None:
    current = admin.get_tenant_settings(db, actor)
    _general_form(db, actor, current)
    _playbook_form(db, actor, current)
    _prices_form(db, actor, current)
