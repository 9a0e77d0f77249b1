"""Campaigns page, the lists the editor grows and shrinks: A/B variants, and the steps with their delays."""

from __future__ import annotations

import streamlit as st

from core.campaign_shape import FIRST_STEP, STEP_DELAY_HOURS, Step, Variant
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


def show_variants(key: str, saved: tuple[Variant, ...], *, disabled: bool) -> tuple[Variant, ...]:
    """A/B variants: a name and a prompt each; none means every lead gets the system prompt."""
    st.markdown("**A/B variants** (optional): leads are split evenly; a variant's prompt is added "
                "to the system prompt for its leads.")
    count = _count(key, len(saved))
    variants = []
    for index in range(count):
        item = saved[index] if index < len(saved) else Variant(name=chr(ord("A") + index))
        st.session_state.setdefault(f"{key}_name_{index}", item.name)
        st.session_state.setdefault(f"{key}_prompt_{index}", item.prompt)
        name_column, prompt_column = st.columns([1, 4])
        name = name_column.text_input(f"Variant {index + 1} name", key=f"{key}_name_{index}",
                                      disabled=disabled)
        prompt = prompt_column.text_area(f"Variant {index + 1} prompt",
                                         key=f"{key}_prompt_{index}", disabled=disabled, height=90)
        variants.append(Variant(name=name.strip(), prompt=prompt.strip()))
    _add_remove(key, count, 0, "variant", ("name", "prompt"), disabled)
    return tuple(variants)


def show_steps(key: str, saved: tuple[Step, ...], *, disabled: bool) -> tuple[Step, ...]:
    """The first touch and its follow-ups, each sent a number of hours after the one before."""
    saved = saved or (FIRST_STEP,)
    count = _count(key, len(saved))
    steps: list[Step] = []
    for index in range(count):
        item = saved[index] if index < len(saved) else Step(delay_hours=STEP_DELAY_HOURS.default or 0)
        st.session_state.setdefault(f"{key}_delay_{index}", int(item.delay_hours))
        st.session_state.setdefault(f"{key}_prompt_{index}", item.prompt or "")
        delay_column, prompt_column = st.columns([1, 4])
        title = "First touch" if index == 0 else f"Follow-up {index}"
        if index == 0:
            delay_column.markdown(f"**{title}**  \nwhen the campaign starts")
            delay = 0
        else:
            delay = int(delay_column.number_input(f"{title}: hours after the previous step",
                                                  **STEP_DELAY_HOURS.widget(),
                                                  key=f"{key}_delay_{index}", disabled=disabled))
        prompt = prompt_column.text_area(
            f"{title} prompt (empty: the system prompt)", key=f"{key}_prompt_{index}",
            disabled=disabled, height=68)
        steps.append(Step(delay_hours=delay, prompt=prompt.strip() or None))
    _add_remove(key, count, 1, "follow-up", ("delay", "prompt"), disabled)
    return tuple(steps)
