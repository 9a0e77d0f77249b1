"""Account: who you are signed in as, where, and changing your own password."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.sign_in import live_sessions
from pages.auth import SESSION_KEY, show_password_form
from pages.common import current_actor, get_db, get_settings, md

actor = current_actor()
db = get_db()
st.title("Your account")
st.markdown(f"Signed in as **{md(actor.username)}** · {actor.role.value}")

sessions = live_sessions(db, actor, current_session_id=st.session_state.get(SESSION_KEY))
st.subheader("Where you are signed in")
st.container(key="account_sessions").dataframe(
    pd.DataFrame(
        [
            {
                "signed in": s.signed_in_at,
                "last seen": s.last_seen_at,
                "until": s.expires_at,
                "browser": "this one" if s.current else "",
            }
            for s in sessions
        ],
        columns=["signed in", "last seen", "until", "browser"],
    ),
    hide_index=True,
)
st.caption("Sign out (in the sidebar) ends every one of these; so does changing your password.")

st.subheader("Change your password")
st.caption("You need your current password. Changing it signs you out in every browser, this one too.")
show_password_form(db, get_settings(), actor, required=False)
