"""A campaign's shape in one place: the values services and the pipeline read, its steps and A/B
variants as typed values, and the defaults and ranges of its numbers.

`CampaignData` is what a pipeline run reads of its campaign, `CampaignView` everything a person
sees of one; both are filled from a `Campaign` row by their field names, and the pipeline's
one-query read selects the columns of `CampaignData`'s fields, so a new campaign field is a
column of the model (with its migration) and a field here.

Steps and variants are stored as JSON lists (`[{"delay_hours": 72, "prompt": "..."}]`,
`[{"name": "A", "prompt": "...", "weight": 0}]`); the column types below turn them into `Step` and
`Variant` values when a row is read and back into the same JSON when it is written, so no other
module looks inside the JSON. What a person types is checked by `check_steps` and
`check_variants`, with messages that say which step or variant is wrong. The numbers' defaults
and ranges (`TEMPERATURE`, `MAX_SMS_SEGMENTS`, ...) are used by the model's column defaults, the
validation of an edit and the editor's widgets alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from core.errors import ValidationError


@dataclass(frozen=True)
class NumberRange:
    """The bounds of a campaign number (high None: no upper bound), its default and its step."""

    low: float
    high: float | None
    default: float | None
    step: float = 1
    whole: bool = True  # a whole number: the widgets take and give ints

    def holds(self, value: float) -> bool:
        return value >= self.low and (self.high is None or value <= self.high)

    def widget(self) -> dict[str, Any]:
        """min_value, max_value and step for a Streamlit number input or slider."""
        kind = int if self.whole else float
        return {"min_value": kind(self.low), "max_value": None if self.high is None else kind(self.high),
                "step": kind(self.step)}


TEMPERATURE = NumberRange(low=0.0, high=2.0, default=0.7, step=0.1, whole=False)
MAX_SMS_SEGMENTS = NumberRange(low=1, high=10, default=2)
SENDS_PER_MINUTE = NumberRange(low=1, high=None, default=None)  # default None: no limit
BUDGET_CAP_USD = NumberRange(low=0.0, high=None, default=None, step=0.01, whole=False)  # None: no cap
STEP_DELAY_HOURS = NumberRange(low=0, high=None, default=72)  # the default: a new follow-up's delay


@dataclass(frozen=True)
class Step:
    """One touch of a sequence: sent `delay_hours` after the one before (the first: at the start),
    written from the campaign prompt plus `prompt` when it has one."""

    delay_hours: float = 0
    prompt: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"delay_hours": self.delay_hours, **({"prompt": self.prompt} if self.prompt else {})}


FIRST_STEP = Step()


@dataclass(frozen=True)
class Variant:
    """An A/B variant: its prompt is added to the campaign prompt for the leads dealt to it.

    `weight` 0 deals it no new leads ("keep the winner" gives the winner 100, the others 0);
    None, as written by the editor, deals it its even share.
    """

    name: str
    prompt: str = ""
    weight: int | None = None

    @property
    def dealt(self) -> bool:
        return self.weight != 0

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "prompt": self.prompt,
                **({"weight": self.weight} if self.weight is not None else {})}


def _hours(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _weight(value: Any) -> int | None:
    return int(value) if _hours(value) is not None else None


def _stored_step(item: Any) -> Step:
    # Whatever a row holds reads as a step: one without a usable delay is sent at once.
    if isinstance(item, Step):
        return item
    if not isinstance(item, Mapping):
        return Step()
    return Step(delay_hours=_hours(item.get("delay_hours")) or 0, prompt=item.get("prompt") or None)


def _given_variant(item: Any) -> Variant | None:
    if isinstance(item, Variant):
        return item
    if not isinstance(item, Mapping):
        return None
    return Variant(name=str(item.get("name") or ""), prompt=str(item.get("prompt") or ""),
                   weight=_weight(item.get("weight")))


def steps_from_json(raw: Iterable[Any] | None) -> tuple[Step, ...]:
    return tuple(_stored_step(item) for item in raw or ())


def variants_from_json(raw: Iterable[Any] | None) -> tuple[Variant, ...]:
    # A stored entry without a name can be dealt no lead and named in no prompt: it is not a variant.
    return tuple(v for v in map(_given_variant, raw or ()) if v is not None and v.name)


_STEP_DELAY_PROBLEM = "step {number}: delay_hours must be a number of hours, 0 or more"


def _given_step(number: int, item: Any) -> Step:
    if isinstance(item, Step):
        return item
    if not isinstance(item, Mapping):
        raise ValidationError(f"step {number} must be an object with delay_hours and a prompt")
    delay = _hours(item.get("delay_hours", 0))
    if delay is None:
        raise ValidationError(_STEP_DELAY_PROBLEM.format(number=number))
    prompt = item.get("prompt")
    return Step(delay_hours=delay, prompt=str(prompt) if prompt else None)


def check_steps(value: Iterable[Any] | None) -> tuple[Step, ...]:
    """A sequence as a person gave it (steps or their JSON objects); at least the first touch."""
    steps = tuple(_given_step(number, item) for number, item in enumerate(value or (), start=1))
    for number, step in enumerate(steps, start=1):
        if not STEP_DELAY_HOURS.holds(step.delay_hours):
            raise ValidationError(_STEP_DELAY_PROBLEM.format(number=number))
    return steps or (FIRST_STEP,)


def check_variants(value: Iterable[Any] | None) -> tuple[Variant, ...]:
    """A/B variants as a person gave them: each with a distinct name (none: every lead gets "A")."""
    variants = [_given_variant(item) for item in value or ()]
    named = [v for v in variants if v is not None and v.name]
    if len(named) != len(variants) or len({v.name for v in named}) != len(named):
        raise ValidationError("each A/B variant needs a distinct name and a prompt")
    return tuple(named)


class JSONList(TypeDecorator[tuple[Any, ...]]):
    """A JSON list column read as typed values by `read`, written back as each value's JSON."""

    impl = JSON
    cache_ok = True

    def __init__(self, read: Callable[[Iterable[Any] | None], tuple[Any, ...]]) -> None:
        super().__init__()
        self.read = read

    def process_bind_param(self, value: Iterable[Any] | None, dialect: Dialect) -> list[dict[str, Any]]:
        return [item.as_json() for item in self.read(value)]

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Any, ...]:
        return self.read(value)


STEPS_JSON = JSONList(steps_from_json)  # campaigns.steps
VARIANTS_JSON = JSONList(variants_from_json)  # campaigns.variants


@dataclass(frozen=True)
class CampaignData:
    """What a pipeline run reads of its campaign."""

    id: int
    tenant_id: int
    name: str
    channel: str
    status: str
    system_prompt: str
    variants: tuple[Variant, ...]
    model: str
    temperature: float
    steps: tuple[Step, ...]
    research_web: bool
    max_sms_segments: int
    send_window: dict[str, Any] | None  # the campaign's own send window, overriding the tenant's
    approval_required: bool

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, campaign: Any) -> Self:
        """The values of a `Campaign` row (or anything with its attributes)."""
        return cls(**{name: getattr(campaign, name) for name in cls.field_names()})


@dataclass(frozen=True)
class CampaignView(CampaignData):
    """A campaign as the dashboard, the CLI and the services' callers see it."""

    description: str | None
    status_reason: str | None  # why it is paused or failed ("budget cap reached")
    audience: dict[str, Any]
    scheduled_at: datetime | None
    sends_per_minute: int | None
    budget_cap_microusd: int | None
    spent_microusd: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    archived_at: datetime | None
    reply_stop_classes: tuple[str, ...]  # the reply classes that end the sequence (core.inbound.policy)

    def __post_init__(self) -> None:
        # Stored as a JSON list; one type for comparing what the editor gives back.
        object.__setattr__(self, "reply_stop_classes", tuple(self.reply_stop_classes or ()))
