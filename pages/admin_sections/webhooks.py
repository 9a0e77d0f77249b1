"""Admin page, Providers tab: the exact URLs to paste into Twilio and the mail provider."""

from __future__ import annotations

import streamlit as st

from core.config import Settings
from core.inbound.urls import webhook_urls


def show(settings: Settings) -> None:
    urls = webhook_urls(settings)
    st.subheader("Webhook URLs")
    if urls.public_url is None:
        # A note, not a warning: the one-machine default needs no webhooks.
        st.info(
            "LEADFLOW_PUBLIC_URL is not set, so providers have no address to call and every webhook "
            "answers 403. Set it to the https base URL that reaches the HTTP service (port "
            f"{settings.api_port}), e.g. https://leadflow.example.com, then restart.",
            icon=":material/link_off:",
        )
        return
    st.caption(
        "Twilio signs each request over the URL it calls: paste these exactly, as HTTP POST. "
        "Each SMS asks for its own delivery receipts, so the status URL needs no console setting."
    )
    st.markdown("**Twilio: the number's “A message comes in” webhook**")
    st.code(urls.twilio_incoming or "", language=None)
    st.markdown("**Twilio: delivery receipts (status callback)**")
    st.code(urls.status_override or urls.twilio_status or "", language=None)
    if urls.status_override:
        st.caption("From LEADFLOW_TWILIO_STATUS_CALLBACK_URL, which overrides the service's own URL.")
    st.markdown("**Email: one-click unsubscribe links** (`{token}` is each recipient's signed token)")
    st.code(urls.unsubscribe_pattern or "", language=None)
