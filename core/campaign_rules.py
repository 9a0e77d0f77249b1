"""What a campaign's fields may hold and which may change in each status.

Everything may be edited in draft; the send rate, the budget cap, the schedule and the send
window also while scheduled or paused; only the name and description while running.
"""

from __future__ import annotations

from typing import Any

from core.campaign_prompts import DEFAULT_PROMPTS
from core.campaign_shape import (
    BUDGET_CAP_USD,
    MAX_SMS_SEGMENTS,
    SENDS_PER_MINUTE,
    TEMPERATURE,
    check_steps,
    check_variants,
)
from core.compliance.send_window import parse_clock
from core.errors import ValidationError
from core.inbound.policy import check_stop_classes
from core.models import CampaignStatus
from core.pipeline.audience import AUDIENCE_KEYS

ALWAYS_EDITABLE = frozenset({"name", "description", "reply_stop_classes"})
# Changing how the run is paced or capped, never what it says or to whom.
PAUSED_EDITABLE = ALWAYS_EDITABLE | {
    "sends_per_minute", "budget_cap_microusd", "scheduled_at", "send_window",
}
DRAFT_EDITABLE = PAUSED_EDITABLE | {
    "channel", "system_prompt", "variants", "model", "temperature", "audience", "steps",
    "research_web", "max_sms_segments", "approval_required",
}
EDITABLE_BY_STATUS: dict[str, frozenset[str]] = {
    CampaignStatus.draft.value: frozenset(DRAFT_EDITABLE),
    CampaignStatus.scheduled.value: frozenset(PAUSED_EDITABLE),
    CampaignStatus.paused.value: frozenset(PAUSED_EDITABLE),
    CampaignStatus.running.value: ALWAYS_EDITABLE,
}

# -- validation ------------------------------------------------------------------------------


def check_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationError("a campaign needs a name")
    if len(cleaned) > 200:
        raise ValidationError("the campaign name may have at most 200 characters")
    return cleaned


def check_channel(channel: str) -> str:
    if channel not in DEFAULT_PROMPTS:
        raise ValidationError(f"channel '{channel}' is not one of: sms, email")
    return channel


def _check_audience(audience: dict[str, Any] | None) -> dict[str, Any]:
    audience = dict(audience or {})
    unknown = set(audience) - set(AUDIENCE_KEYS)
    if unknown:
        raise ValidationError(
            f"unknown audience filter {', '.join(sorted(unknown))}; use {', '.join(AUDIENCE_KEYS)}"
        )
    for key, values in audience.items():
        if not isinstance(values, list):
            raise ValidationError(f"the audience filter '{key}' must be a list")
    return {k: v for k, v in audience.items() if v}


def _check_send_window(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A campaign's send-window override: start and end "HH:MM" (equal: all day), weekdays only."""
    if not value:
        return None
    unknown = set(value) - {"start", "end", "weekdays_only"}
    if unknown:
        raise ValidationError(f"unknown send window keys: {', '.join(sorted(unknown))}")
    window: dict[str, Any] = {
        k: parse_clock(str(value[k]), what=f"the send window {k}").strftime("%H:%M")
        for k in ("start", "end")
        if value.get(k)
    }
    window["weekdays_only"] = bool(value.get("weekdays_only", False))
    return window


class FieldInvalid(ValidationError):
    """One campaign field's value cannot be accepted; `field` names it (the API's field errors)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class CampaignInvalid(ValidationError):
    """Fields of a campaign cannot be accepted: each one's error, so a form or an API caller
    learns of every wrong field at once, not one per attempt."""

    def __init__(self, errors: list[FieldInvalid]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        # The shape every error about several fields has (LeadEditRefused's too): the API's problem
        # details list them as they are.
        self.field_errors = [{"field": error.field, "message": str(error)} for error in errors]


def check_change(key: str, value: Any) -> Any:
    """Validate one editable field; returns the value to store. FieldInvalid names the field."""
    try:
        return _checked(key, value)
    except FieldInvalid:
        raise
    except ValidationError as error:
        raise FieldInvalid(str(error), field=key) from None
    except (TypeError, ValueError):
        # A value of the wrong type (the API's callers can send one; the editor's widgets cannot).
        raise FieldInvalid(f"{key.replace('_', ' ')} has a value of the wrong type", field=key) from None


def check_changes(values: dict[str, Any]) -> dict[str, Any]:
    """Every field of `values` validated; CampaignInvalid lists each field that failed."""
    cleaned: dict[str, Any] = {}
    errors: list[FieldInvalid] = []
    for key, value in values.items():
        try:
            cleaned[key] = check_change(key, value)
        except FieldInvalid as error:
            errors.append(error)
    if errors:
        raise CampaignInvalid(errors)
    return cleaned


def _checked(key: str, value: Any) -> Any:
    if key == "name":
        return check_name(value)
    if key == "channel":
        return check_channel(value)
    if key == "system_prompt":
        if not value or not str(value).strip():
            raise ValidationError("the prompt may not be empty")
        return str(value).strip()
    if key == "audience":
        return _check_audience(value)
    if key == "steps":
        return check_steps(value)
    if key == "temperature":
        if not TEMPERATURE.holds(float(value)):
            raise ValidationError(
                f"the temperature must be between {TEMPERATURE.low:g} and {TEMPERATURE.high:g}")
        return float(value)
    if key == "max_sms_segments":
        if not MAX_SMS_SEGMENTS.holds(int(value)):
            raise ValidationError(
                f"an SMS may have {MAX_SMS_SEGMENTS.low:g} to {MAX_SMS_SEGMENTS.high:g} segments")
        return int(value)
    if key == "sends_per_minute":
        if value is not None and not SENDS_PER_MINUTE.holds(int(value)):
            raise ValidationError(
                f"the send rate must be at least {SENDS_PER_MINUTE.low:g} per minute (or no limit)")
        return None if value is None else int(value)
    if key == "budget_cap_microusd":
        if value is not None and not BUDGET_CAP_USD.holds(int(value)):
            raise ValidationError("the budget cap may not be negative")
        return None if value is None else int(value)
    if key == "scheduled_at":
        if value is not None and value.tzinfo is None:
            raise ValidationError("give the start time with its time zone")
        return value
    if key == "send_window":
        return _check_send_window(value)
    if key == "reply_stop_classes":
        return check_stop_classes(value)
    if key == "variants":
        return check_variants(value)
    return value

