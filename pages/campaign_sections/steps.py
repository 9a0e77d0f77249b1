"""Campaigns page, the lists the editor grows and shrinks: A/B variants, and the steps with their delays."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.text import with_article


def _count(key: str, saved: int) -> int:
    return int(st.session_state.setdefault(f"{key}_count", saved))


def _resize(key: str, count: int, widgets: tuple[str, ...]) -> None:
    st.session_state[f"{key}_count"] = count
    # The removed item's widgets go too, so a later "add" starts empty.
    for name in widgets:
        st.session_state.pop(f"{key}_{name}_{count}", None)
    st.rerun()


def _add_remove(key: str, count: int, minimum: int, noun: str, widgets: tuple[str, ...],
                disabled: bool) -> None:
    add, remove = st.columns(2)
    if add.button(f"Add {with_article(noun)}", key=f"{key}_add", disabled=disabled):
        _resize(key, count + 1, ())
    if remove.button(f"Remove the last {noun}", key=f"{key}_remove",
                     disabled=disabled or count <= minimum):
        _resize(key, count - 1, widgets)


def show_variants(key: str, saved: list[Any], *, disabled: bool) -> list[dict[str, str]]:
    """A/B variants: a name and a prompt each; none means every lead gets the system prompt."""
    st.markdown("**A/B variants** (optional): leads are split evenly; a variant's prompt is added "
                "to the system prompt for its leads.")
    count = _count(key, len(saved))
    variants = []
    for index in range(count):
        item = saved[index] if index < len(saved) and isinstance(saved[index], dict) else {}
        st.session_state.setdefault(f"{key}_name_{index}", item.get("name", chr(ord("A") + index)))
        st.session_state.setdefault(f"{key}_prompt_{index}", item.get("prompt", ""))
        name_column, prompt_column = st.columns([1, 4])
        name = name_column.text_input(f"Variant {index + 1} name", key=f"{key}_name_{index}",
                                      disabled=disabled)
        prompt = prompt_column.text_area(f"Variant {index + 1} prompt",
                                         key=f"{key}_prompt_{index}", disabled=disabled, height=90)
        variants.append({"name": name.strip(), "prompt": prompt.strip()})
    _add_remove(key, count, 0, "variant", ("name", "prompt"), disabled)
    return variants


def show_steps(key: str, saved: list[Any], *, disabled: bool) -> list[dict[str, Any]]:
    """The first touch and its follow-ups, each sent a number of hours after the one before."""
    saved = saved or [{"delay_hours": 0}]
    count = _count(key, len(saved))
    steps: list[dict[str, Any]] = []
    for index in range(count):
        item = saved[index] if index < len(saved) and isinstance(saved[index], dict) else {}
        default_delay = 0 if index == 0 else 72
        st.session_state.setdefault(f"{key}_delay_{index}", int(item.get("delay_hours", default_delay)))
        st.session_state.setdefault(f"{key}_prompt_{index}", item.get("prompt", ""))
        delay_column, prompt_column = st.columns([1, 4])
        title = "First touch" if index == 0 else f"Follow-up {index}"
        if index == 0:
            delay_column.markdown(f"**{title}**  \nwhen the campaign starts")
            delay = 0
        else:
            delay = int(delay_column.number_input(f"{title}: hours after the previous step",
                                                  min_value=0, step=1, key=f"{key}_delay_{index}",
                                                  disabled=disabled))
        prompt = prompt_column.text_area(
            f"{title} prompt (empty: the system prompt)", key=f"{key}_prompt_{index}",
            disabled=disabled, height=68)
        steps.append({"delay_hours": delay, **({"prompt": prompt.strip()} if prompt.strip() else {})})
    _add_remove(key, count, 1, "follow-up", ("delay", "prompt"), disabled)
    return steps
