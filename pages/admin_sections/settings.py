"""Admin page, tenant settings: sending, the tenant's clock, send rules (window, contact caps, public
holidays), the sender's verification, compliance, the playbook, price overrides, the budget."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core import admin, sender_verification
from core.compliance.frequency import ContactCaps
from core.compliance.public_holidays import holiday_calendars
from core.compliance.send_rules import rules_in_words
from core.db import Database
from core.money import usd_to_microusd
from core.permissions import Actor
from core.tenants import default_time_zone, tenant_time_zone, time_zone_choices
from pages.common import get_settings, md, run_action, user_errors


def _cap_text(cap: int | None) -> str:
    return "" if cap is None else str(cap)


def _send_rules(current: admin.TenantSettings) -> dict[str, object]:
    """The send-rule widgets of the settings form: the window, the caps, public holidays."""
    start_column, end_column = st.columns(2)
    window_start = start_column.text_input("Send window start (HH:MM, recipient's time)",
                                           current.send_window_start, key="settings_start")
    window_end = end_column.text_input("Send window end (HH:MM; before the start: the next day)",
                                       current.send_window_end, key="settings_end")
    weekdays = st.checkbox("Weekdays only", current.weekdays_only, key="settings_weekdays")
    day_column, week_column = st.columns(2)
    per_day = day_column.text_input("At most messages per lead a day (all campaigns; blank: no cap)",
                                    _cap_text(current.contact_cap_per_day), key="settings_cap_day")
    per_week = week_column.text_input("At most messages per lead a week (blank: no cap)",
                                      _cap_text(current.contact_cap_per_week), key="settings_cap_week")
    skip_holidays = st.checkbox("Don't send on public holidays (sends wait for the next open day)",
                                current.skip_public_holidays, key="settings_holidays")
    # Labels from a dict, not a lambda: widget settings must pickle (serializable session state).
    calendars = {"": "Each recipient's own country", **dict(holiday_calendars())}
    codes = list(calendars)
    holiday_country = st.selectbox(
        "Public holiday calendar", codes,
        index=codes.index(current.holiday_country) if current.holiday_country in calendars else 0,
        format_func=calendars.__getitem__, key="settings_holiday_country")
    return {"send_window_start": window_start, "send_window_end": window_end,
            "weekdays_only": weekdays, "contact_cap_per_day": per_day,
            "contact_cap_per_week": per_week, "skip_public_holidays": skip_holidays,
            "holiday_country": holiday_country}


def _time_zone(current: admin.TenantSettings) -> str:
    default = default_time_zone(current.default_country)
    labels = {"": f"{default} (the default for {current.default_country})",
              **{zone: zone for zone in time_zone_choices()}}
    zones = list(labels)
    return st.selectbox(
        "Time zone (schedules and the times shown here)", zones,
        index=zones.index(current.time_zone) if current.time_zone in labels else 0,
        format_func=labels.__getitem__, key="settings_time_zone") or ""


def _general_form(db: Database, actor: Actor,
                  current: admin.TenantSettings) -> admin.TenantSettings | None:
    """The settings form; the settings as saved when it was submitted and saved."""
    with st.form("settings_general"):
        country = st.text_input("Default country (ISO code)", current.default_country,
                                key="settings_country")
        time_zone = _time_zone(current)
        rules = _send_rules(current)
        sms_sender = st.text_input("SMS sender id (a +number or up to 11 letters; unique to you)",
                                   current.sms_sender_id or "", key="settings_sms_sender")
        email_sender = st.text_input("Email sender (verified below before campaigns use it)",
                                     current.email_sender or "", key="settings_email_sender")
        postal = st.text_area("Postal address (shown in emails)", current.postal_address or "",
                              key="settings_postal")
        allowed = st.text_area("Link allow-list (one domain per line)",
                               "\n".join(current.link_allow_list), key="settings_links")
        budget = st.text_input("Monthly budget (USD, blank for none)",
                               admin.microusd_as_dollars_text(current.monthly_budget_microusd),
                               key="settings_budget")
        if not st.form_submit_button("Save settings"):
            return None
        with user_errors():
            saved = admin.update_tenant_settings(db, actor, {
                "default_country": country, "time_zone": time_zone, **rules,
                "sms_sender_id": sms_sender, "email_sender": email_sender,
                "postal_address": postal, "link_allow_list": allowed,
                "monthly_budget_microusd": usd_to_microusd(budget),
            })
            st.success("Settings saved.")
            return saved
        return None


def _rules_in_words(current: admin.TenantSettings) -> None:
    st.markdown("**How messages go out**")
    for line in rules_in_words(
            send_window_start=current.send_window_start, send_window_end=current.send_window_end,
            weekdays_only=current.weekdays_only,
            caps=ContactCaps(current.contact_cap_per_day, current.contact_cap_per_week),
            skip_public_holidays=current.skip_public_holidays,
            holiday_country=current.holiday_country,
            time_zone=tenant_time_zone(current.time_zone, current.default_country)):
        st.caption(line)


def _sender_verification(db: Database, actor: Actor) -> None:
    st.markdown("**Email sender verification**")
    status = sender_verification.sender_status(db, actor)
    if status.sender is None or status.address is None or status.domain is None:
        st.caption("No email sender is set: email goes out from the deployment's own address, "
                   "which needs no verification.")
        return
    address, domain = md(status.address), md(status.domain)
    if status.verified:
        how = (f"the whole domain {domain} is proven through DNS" if status.verified_by == "domain"
               else "the address is proven by the code sent to it")
        st.success(f"{address} is verified: {how}. Email campaigns may use it.")
        if st.button("Remove the verification", key="sender_remove") and run_action(
                sender_verification.remove_verification, db, actor) is not None:
            st.rerun()
        return
    st.warning(f"{address} is not verified yet: email campaigns cannot start until it is. "
               "Prove it one of two ways.")
    dns_column, code_column = st.columns(2)
    with dns_column:
        st.markdown(f"**The whole domain, through DNS**: every address at {domain}.")
        if status.dns_value is None:
            if st.button("Get the DNS record", key="sender_dns_start") and run_action(
                    sender_verification.start_domain_verification, db, actor) is not None:
                st.rerun()
        else:
            st.markdown(f"Add a TXT record at {md(status.dns_name or '')} (or at {domain}) "
                        "with this value, then check:")
            st.code(status.dns_value, language=None)
            if st.button("Check DNS now", key="sender_dns_check") and run_action(
                    sender_verification.check_domain_verification, db, actor) is not None:
                st.rerun()
    with code_column:
        st.markdown(f"**This address only**: a code is emailed to {address}.")
        settings = get_settings()
        if settings.email_provider == "outbox":
            st.caption("Email goes to the outbox here, so the code is shown below instead of sent; "
                       "it stops counting once email is sent for real.")
        label = "Send a new code" if status.code_sent_to else "Send a code to the address"
        if st.button(label, key="sender_code_send") and run_action(
                sender_verification.send_address_code, db, actor, settings) is not None:
            st.rerun()
        if status.code_sent_to and status.code_expires_at:
            st.caption(f"A code was sent to {address}; it works until "
                       f"{status.code_expires_at:%Y-%m-%d %H:%M} UTC.")
            if settings.email_provider == "outbox":
                st.text(sender_verification.code_in_outbox(db, actor) or "")
            with st.form("sender_code_form"):
                code = st.text_input("Code from the email", key="sender_code")
                if st.form_submit_button("Confirm the code") and run_action(
                        sender_verification.confirm_address_code, db, actor, code) is not None:
                    st.rerun()


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
    saved = _general_form(db, actor, current)
    _rules_in_words(saved or current)
    _sender_verification(db, actor)
    _playbook_form(db, actor, current)
    _prices_form(db, actor, current)
