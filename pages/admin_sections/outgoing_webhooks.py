"""Admin, Webhooks tab: the endpoints that receive Leadflow's events, their secrets, a test event,
and the delivery log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.db import Database
from core.permissions import Actor
from core.webhooks.endpoints import (
    EndpointView,
    EndpointWithSecret,
    create_endpoint,
    delete_endpoint,
    list_deliveries,
    list_endpoints,
    rotate_secret,
    send_test_event,
    update_endpoint,
)
from core.webhooks.events import EVENT_WORDS, SUBSCRIBABLE, EventType
from pages.common import md, run_action

SECRET_KEY = "webhooks_new_secret"  # (endpoint url, secret) to show once, at the next run
FLASH_KEY = "webhooks_flash"
ALL = ""
STATUSES = {
    ALL: "Every status",
    "pending": "Waiting to retry",
    "sending": "Being sent",
    "delivered": "Delivered",
    "failed": "Failed",
}
LOG_EVENTS = [ALL, *SUBSCRIBABLE, EventType.webhook_test.value]
LOG_ROWS = 200


def _status_label(status: str) -> str:
    return STATUSES[status]


def _event_label(event_type: str) -> str:
    return "Every event" if event_type == ALL else event_type


def _remember_secret(result: EndpointWithSecret | None, flash: str) -> None:
    if result is not None:
        st.session_state[SECRET_KEY] = [result.endpoint.url, result.secret]
        st.session_state[FLASH_KEY] = flash
        st.rerun()


def _event_checkboxes(prefix: str, chosen: tuple[str, ...] = ()) -> list[str]:
    columns = st.columns(2)
    return [
        event_type
        for index, event_type in enumerate(SUBSCRIBABLE)
        if columns[index % 2].checkbox(
            event_type, value=event_type in chosen, key=f"{prefix}_{event_type}", help=EVENT_WORDS[event_type]
        )
    ]


def _shown_once() -> None:
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    if secret := st.session_state.pop(SECRET_KEY, None):
        url, value = secret
        st.warning(
            f"The signing secret of {md(url)}: copy it now, it is not shown again. Receivers "
            "verify each request with it (Standard Webhooks).",
            icon=":material/key:",
        )
        st.container(key="webhooks_secret").code(value, language=None)


def _endpoints_table(endpoints: list[EndpointView]) -> None:
    if not endpoints:
        st.info("No endpoint yet: add one below to have Leadflow POST its events to your systems.")
        return
    rows = [
        {
            "ID": e.id,
            "URL": e.url,
            "Description": e.description,
            "Events": ", ".join(e.event_types),
            "Enabled": e.enabled,
            "Old secret signs until": e.previous_secret_expires_at,
        }
        for e in endpoints
    ]
    st.container(key="webhook_endpoints").dataframe(pd.DataFrame(rows), hide_index=True)


def _add_form(db: Database, actor: Actor) -> None:
    with st.form("webhook_add", clear_on_submit=True):
        url = st.text_input(
            "Endpoint URL", placeholder="https://crm.example.com/hooks/leadflow", key="webhook_add_url"
        )
        description = st.text_input("Description (optional)", key="webhook_add_description")
        st.caption("Events to send")
        chosen = _event_checkboxes("webhook_add_event")
        if st.form_submit_button("Add endpoint"):
            created = run_action(
                create_endpoint, db, actor, url=url, event_types=chosen, description=description
            )
            _remember_secret(created, "Endpoint added.")


def _edit(db: Database, actor: Actor, endpoints: list[EndpointView]) -> None:
    # The labels themselves are the options: session state keeps no function of this run.
    by_label = {f"#{e.id} {e.url}": e for e in endpoints}
    endpoint = by_label[st.selectbox("Endpoint", list(by_label), key="webhook_edit_select")]
    with st.form(f"webhook_edit_{endpoint.id}"):
        url = st.text_input("Endpoint URL", value=endpoint.url, key=f"webhook_edit_{endpoint.id}_url")
        description = st.text_input(
            "Description", value=endpoint.description, key=f"webhook_edit_{endpoint.id}_description"
        )
        enabled = st.checkbox(
            "Enabled (a disabled endpoint gets no events)",
            value=endpoint.enabled,
            key=f"webhook_edit_{endpoint.id}_enabled",
        )
        chosen = _event_checkboxes(f"webhook_edit_{endpoint.id}_event", endpoint.event_types)
        if st.form_submit_button("Save changes"):
            if (
                run_action(
                    update_endpoint,
                    db,
                    actor,
                    endpoint.id,
                    url=url,
                    description=description,
                    enabled=enabled,
                    event_types=chosen,
                )
                is not None
            ):
                st.session_state[FLASH_KEY] = "Endpoint saved."
                st.rerun()
    test_column, rotate_column, delete_column = st.columns(3)
    if test_column.button("Send a test event", key="webhook_test"):
        queued = run_action(send_test_event, db, actor, endpoint.id)
        if queued is not None:
            st.session_state[FLASH_KEY] = (
                f"Test event {queued.event_id} queued: the job runner sends it "
                "within seconds; its outcome appears in the delivery log."
            )
            st.rerun()
    overlap = rotate_column.number_input(
        "Old secret keeps signing for (hours)",
        min_value=0.0,
        max_value=720.0,
        value=float(db.settings.webhook_secret_overlap_hours),
        step=1.0,
        key="webhook_overlap",
    )
    if rotate_column.button("Rotate secret", key="webhook_rotate"):
        rotated = run_action(rotate_secret, db, actor, endpoint.id, overlap_hours=overlap)
        _remember_secret(
            rotated, f"New secret for {endpoint.url}: the old one also signs for {overlap:g} hours."
        )
    if delete_column.button("Delete endpoint", key="webhook_delete", type="secondary"):
        if run_action(_delete, db, actor, endpoint.id):
            st.session_state[FLASH_KEY] = f"Endpoint {endpoint.url} deleted, with its delivery log."
            st.rerun()


def _delete(db: Database, actor: Actor, endpoint_id: int) -> bool:
    delete_endpoint(db, actor, endpoint_id)
    return True


def _delivery_log(db: Database, actor: Actor, endpoints: list[EndpointView]) -> None:
    st.subheader("Delivery log")
    urls = {e.id: e.url for e in endpoints}
    status_column, event_column = st.columns(2)
    status = status_column.selectbox(
        "Status", list(STATUSES), format_func=_status_label, key="webhook_log_status"
    )
    event_type = event_column.selectbox(
        "Event", LOG_EVENTS, format_func=_event_label, key="webhook_log_event"
    )
    rows = (
        run_action(
            list_deliveries, db, actor, status=status or None, event_type=event_type or None, limit=LOG_ROWS
        )
        or []
    )
    if not rows:
        st.caption("No delivery matches.")
        return
    table = pd.DataFrame(
        [
            {
                "Event": d.event_type,
                "Status": d.status,
                "Code": d.last_status_code,
                "Response ms": d.last_response_ms,
                "Attempts": d.attempts,
                "Next attempt": d.next_attempt_at,
                "Created": d.created_at,
                "Endpoint": urls.get(d.endpoint_id, d.endpoint_id),
                "Error": d.last_error,
                "Webhook id": d.event_id,
            }
            for d in rows
        ]
    )
    st.container(key="webhook_deliveries").dataframe(table, hide_index=True)
    if len(rows) == LOG_ROWS:
        st.caption(f"The newest {LOG_ROWS} deliveries; filter to see others.")


def show(db: Database, actor: Actor) -> None:
    st.subheader("Outgoing webhooks")
    st.caption(
        "Leadflow POSTs each event you choose to your endpoints, signed as Standard Webhooks "
        "says (webhook-id, webhook-timestamp, webhook-signature), and retries for 24 hours "
        "until your endpoint answers 2xx."
    )
    _shown_once()
    endpoints = run_action(list_endpoints, db, actor) or []
    _endpoints_table(endpoints)
    with st.expander("Add an endpoint", expanded=not endpoints):
        _add_form(db, actor)
    if endpoints:
        with st.expander("Edit, test or rotate an endpoint"):
            _edit(db, actor, endpoints)
    _delivery_log(db, actor, endpoints)
