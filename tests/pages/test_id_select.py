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


def test_the_browser_is_sent_the_new_label_of_the_picked_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # A browser keeps showing the label it was sent when the options change under a keyed
    # selectbox: "Spring SMS · running" stayed on screen over a status line saying "Completed".
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    app = AppTest.from_function(_picker_page).run()
    app.selectbox(key="record").select(8).run()
    app.session_state["labels"] = {7: "Ada", 8: "Grace (completed)", 9: "Hedy"}
    app.run()
    box = app.selectbox(key="record")
    assert box.proto.set_value and box.proto.raw_value == "Grace (completed)"
    assert not app.exception and not app.warning
    app.run()  # the browser now holds the new label: nothing more to send
    assert app.session_state["shown"] == 8
    assert not app.selectbox(key="record").proto.set_value


def test_a_new_pick_wins_over_a_relabelled_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    app = AppTest.from_function(_picker_page).run()
    app.selectbox(key="record").select(8).run()
    app.session_state["labels"] = {7: "Ada", 8: "Grace (completed)", 9: "Hedy"}
    app.selectbox(key="record").select(9).run()
    assert app.session_state["shown"] == 9
