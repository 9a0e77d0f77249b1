"""AppTest with a browser's memory of selectboxes: the label it holds is what it sends back."""

from __future__ import annotations

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1.element_tree import InitialValue, Selectbox


def keep_selectbox_labels_as_a_browser_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every selectbox send the label the browser holds, not one AppTest re-derives.

    A selectbox travels as its label: the browser keeps the label it showed (the default, the one
    the user picked, or one the server set) and sends it on every rerun, even after the script
    renamed that option. AppTest instead formats the current value with the current labels, which
    hides a picker whose labels change under the user (a status in the label).
    """
    derived = Selectbox._widget_state.fget  # type: ignore[attr-defined]
    held: dict[str, str] = {}

    def browser_state(box: Selectbox) -> WidgetState:  # type: ignore[type-arg]
        state: WidgetState = derived(box)
        key = str(box.key)
        if not isinstance(box._value, InitialValue):  # the user picked an option in this step
            held[key] = state.string_value
        elif box.proto.set_value:  # the server set the value: the browser now shows that label
            held[key] = box.proto.raw_value
        elif key not in held and box.options:  # first render: the default option
            held[key] = box.options[box.proto.default]
        if key in held:
            state.string_value = held[key]
        return state

    monkeypatch.setattr(Selectbox, "_widget_state", property(browser_state))
