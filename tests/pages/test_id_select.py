"""The id picker: it stays on the picked record whatever happens to that record's label."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.browser_widgets import keep_selectbox_labels_as_a_browser_does


def _picker_page() -> None:
    import streamlit as st

    from pages.widgets import id_select

    labels = st.session_state.get("labels", {7: "Ada", 8: "Grace", 9: "Hedy"})
    st.session_state["shown"] = id_select.show("Record", "record", labels, default=7)


@pytest.mark.parametrize(
    "renamed",
    [
        {8: "Grace (paused)"},  # the picked option's label changes
        {8: "Grace Hopper", 7: "Ada Lovelace", 9: "Hedy Lamarr"},  # every label changes
    ],
)
def test_the_pick_survives_a_change_of_its_label(
    monkeypatch: pytest.MonkeyPatch, renamed: dict[int, str]
) -> None:
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    app = AppTest.from_function(_picker_page).run()
    assert app.session_state["shown"] == 7  # the default opens first
    app.selectbox(key="record").select(8).run()
    app.session_state["labels"] = {7: "Ada", 8: "Grace", 9: "Hedy"} | renamed
    app.run()
    assert app.session_state["shown"] == 8
    assert app.selectbox(key="record").value == 8
    app.run()
    assert app.session_state["shown"] == 8


def test_a_record_gone_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    app = AppTest.from_function(_picker_page).run()
    app.selectbox(key="record").select(9).run()
    assert app.session_state["shown"] == 9
    app.session_state["labels"] = {7: "Ada", 8: "Grace"}  # deleted by someone else
    app.run()
    assert not app.exception
    assert app.session_state["shown"] == 7
