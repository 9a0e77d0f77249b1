"""Account: who you are signed in as, and changing your own password."""

from __future__ import annotations

import streamlit as st

from pages.auth import show_password_form
from pages.common import current_actor, get_db, get_settings

actor = current_actor()
st.title("Your account")
st.markdown(f"Signed in as **{actor.username}** · {actor.role.value}")

st.subheader("Change your password")
st.caption("You need your current password. Changing it signs you out in every browser, this one too.")
show_password_form(get_db(), get_settings(), actor, required=False)
