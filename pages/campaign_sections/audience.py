"""Campaigns page, the audience filter (tags, imports, industries, countries) with its live count.

The count is sized once per filter, tenant and channel (cached), not on every rerun of the page;
a large audience is estimated from a sample, and the page says so.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import streamlit as st

from core.campaign_editor import AudienceChoices, audience_choices
from core.permissions import Actor
from core.pipeline.estimate import (
    AudienceSize,
    describe_audience_size,
    describe_sample,
    estimate_audience_size,
)
from core.text import plural_noun, with_article
from pages.common import get_db, run_action

CACHE_SECONDS = 15
# A sized audience is kept this long: leads imported or opted out meanwhile count after it.
SIZE_CACHE_SECONDS = 60


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def load_choices(tenant_id: int, _actor: Actor) -> AudienceChoices:
    return audience_choices(get_db(), _actor)


@st.cache_data(ttl=SIZE_CACHE_SECONDS, show_spinner="Counting the audience…")
def load_size(tenant_id: int, channel: str, audience_json: str, _actor: Actor) -> AudienceSize:
    # The filter as JSON: a cache key must be hashable.
    return estimate_audience_size(get_db(), _actor, channel, json.loads(audience_json))


def _import_label(labels: dict[int, str], import_id: int) -> str:
    # A module-level function (bound with partial), not a lambda: session state must pickle.
    return labels.get(import_id, f"#{import_id}")


def show(actor: Actor, key: str, channel: str, saved: dict[str, Any], *,
         disabled: bool) -> dict[str, Any]:
    """Four multiselects and the number of leads they select now; returns the filter."""
    choices = run_action(load_choices, actor.tenant_id, actor)
    if choices is None:
        return dict(saved)
    options: dict[str, list[Any]] = {
        "tags": choices.tags, "import_ids": list(choices.imports),
        "industries": choices.industries, "countries": choices.countries,
    }
    for name, values in saved.items():
        # A saved value no longer offered (an old import) stays selectable.
        options[name] = list(dict.fromkeys([*options.get(name, []), *values]))
        st.session_state.setdefault(f"{key}_{name}", list(values))
    tags, imports = st.columns(2)
    industries, countries = st.columns(2)
    audience = {
        "tags": tags.multiselect("Tags (any of)", options["tags"], key=f"{key}_tags",
                                 disabled=disabled, placeholder="Every tag"),
        "import_ids": imports.multiselect(
            "Imports (any of)", options["import_ids"], key=f"{key}_import_ids", disabled=disabled,
            format_func=partial(_import_label, choices.imports), placeholder="Every import"),
        "industries": industries.multiselect(
            "Industries (any of)", options["industries"], key=f"{key}_industries",
            disabled=disabled, placeholder="Every industry", accept_new_options=True),
        "countries": countries.multiselect(
            "Countries (any of, ISO codes)", options["countries"], key=f"{key}_countries",
            disabled=disabled, placeholder="Every country", accept_new_options=True),
    }
    audience = {name: values for name, values in audience.items() if values}
    size = run_action(load_size, actor.tenant_id, channel, json.dumps(audience, sort_keys=True),
                      actor)
    if size is not None:
        address = "phone number" if channel == "sms" else "email address"
        verb = plural_noun(size.leads, "matches", "match")
        counted = describe_audience_size(size)
        st.markdown(f"**{counted[:1].upper()}{counted[1:]}** {verb} now (not opted out, "
                    f"with {with_article(address)}, not suppressed).")
        if how := describe_sample(size):
            st.caption(f"An estimate: {how} (95% confidence).")
    return audience
