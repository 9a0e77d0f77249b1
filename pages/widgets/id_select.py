"""A selectbox over record ids that stays on the picked record when its label changes."""

from __future__ import annotations

import streamlit as st


def picked_key(key: str) -> str:
    """The session-state key under which the id picked last is remembered."""
    return f"{key}__picked_id"


def show(label: str, key: str, labels: dict[int, str], *, default: int, force: int | None = None) -> int:
    """The picked id among `labels` (id -> label); `default` on the first run, `force` to open one.

    A selectbox travels to and from the browser as its label, not its value: when the picked
    option's label changes (a status in it, a rename), Streamlit no longer finds the label the
    browser sends back and falls back to the widget's default option, so a control next to the
    picker would act on another record. The default option is therefore always the id picked
    last, which this widget remembers under a key of its own. The browser also keeps showing the
    old label; when the picked record's label changed, the value is sent again with the new one.
    """
    options = list(labels)
    remembered = st.session_state.get(picked_key(key))
    if force not in labels and _relabelled(key, labels, remembered):
        # The browser keeps showing the label it was first sent ("running" after the run has
        # completed): a value set through session state sends it the current label.
        force = remembered
    if force in labels:
        # Set before the widget exists in this run, so it wins over what the browser sends.
        st.session_state[key] = force
        st.session_state[picked_key(key)] = force
    elif st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)  # a record deleted since, or another tenant's
    start = remembered if remembered in labels else default if default in labels else options[0]
    # Labels from a dict, not a lambda: widget settings must pickle (serializable session state).
    # A forced value is already in session state: index 0 avoids Streamlit's warning about a
    # widget given both a default and a session-state value (the forced value is valid, so the
    # fallback never applies in that run).
    index = 0 if force in labels else options.index(start)
    picked = int(st.selectbox(label, options, index=index, key=key, format_func=labels.__getitem__))
    st.session_state[picked_key(key)] = picked
    st.session_state[_shown_key(key)] = labels[picked]
    return picked


def _shown_key(key: str) -> str:
    return f"{key}__shown_label"


def _relabelled(key: str, labels: dict[int, str], remembered: object) -> bool:
    """The record picked last is still picked (the user chose no other) and its label changed."""
    if not isinstance(remembered, int) or remembered not in labels:
        return False
    shown = st.session_state.get(_shown_key(key))
    sent = st.session_state.get(key)  # the user's new pick, if any, is a valid option other than it
    return shown is not None and shown != labels[remembered] and (sent == remembered or sent not in labels)
