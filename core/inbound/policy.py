"""A campaign's choice of the reply classes that stop its sequence, checked before it is stored."""

from __future__ import annotations

from typing import Any

from core.errors import ValidationError
from core.inbound.classify import ReplyClass
from core.models import DEFAULT_REPLY_STOP_CLASSES

# An opt-out always ends every sequence (it is the law, not a setting): it is not offered.
CHOOSABLE_STOP_CLASSES = tuple(c.value for c in ReplyClass if c is not ReplyClass.unsubscribe)
DEFAULT_STOP_CLASSES = DEFAULT_REPLY_STOP_CLASSES


def check_stop_classes(value: Any) -> list[str]:
    """The classes as stored (in the classes' own order), or a ValidationError naming the unknown."""
    chosen = {str(v) for v in (value or [])}
    unknown = sorted(chosen - set(CHOOSABLE_STOP_CLASSES) - {ReplyClass.unsubscribe.value})
    if unknown:
        raise ValidationError(
            f"unknown reply class {', '.join(unknown)}; choose from {', '.join(CHOOSABLE_STOP_CLASSES)}"
        )
    return [c for c in CHOOSABLE_STOP_CLASSES if c in chosen]
