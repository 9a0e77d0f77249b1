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
    last, which this widget remembers under a key of its own.
    """
    options = list(labels)
    if force in labels:
        # Set before the widget exists in this run, so it wins over what the browser sends.
        st.session_state[key] = force
        st.session_state[picked_key(key)] = force
    elif st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)  # a record deleted since, or another tenant's
    remembered = st.session_state.get(picked_key(key))
    start = remembered if remembered in labels else default if default in labels else options[0]
    # Labels from a dict, not a lambda: widget settings must pickle (serializable session state).
    # A forced value is already in session state: index 0 avoids Streamlit's warning about a
    # widget given both a default and a session-state value (the forced value is valid, so the
    # fallback never applies in that run).
    index = 0 if force in labels else options.index(start)
    picked = int(st.selectbox(label, options, index=index, key=key, format_func=labels.__getitem__))
    st.session_state[picked_key(key)] = picked
    return picked
