"""The gate every model call and every send passes through: rate limits and the budget cap.

The pipeline only knows this protocol; the job runner supplies the real, database-shared gate.
`NO_LIMITS` lets previews, tests and benchmarks run without one.
"""

from __future__ import annotations

from typing import Protocol

from core.errors import LeadflowError


class BudgetExceeded(LeadflowError):
    """What is left of a budget (the campaign's cap, the tenant's month) cannot hold the next
    model call: nothing is spent, and the campaigns concerned are paused."""


class CallTooLarge(LeadflowError):
    """One model call would cost more than a whole budget: it can never fit, whatever is spent
    or released, so its lead fails alone (with this reason) and the campaign goes on."""


class CallGate(Protocol):
    """Shared rate limits and budget reservations, consulted before each model call and send."""

    def reserve_model_call(
        self,
        *,
        tenant_id: int,
        campaign_id: int | None,
        model: str,
        estimated_tokens: int,
        estimated_cost_microusd: int,
    ) -> object:
        """Block until the rate limits allow the call.

        Raises CallTooLarge when the estimate exceeds a whole budget (the campaign's cap, the
        tenant's monthly budget), BudgetExceeded when it exceeds what is left of one.
        """
        ...

    def settle_model_call(
        self, reservation: object, *, input_tokens: int, output_tokens: int, cost_microusd: int
    ) -> None:
        """Replace a reservation's estimate with what was used; called after every reserved call."""
        ...

    def acquire_send(self, *, tenant_id: int, campaign_id: int, channel: str) -> None:
        """Block until the send rate of the channel allows one more message."""
        ...


class _NoLimits:
    """A gate that never waits and never refuses."""

    def reserve_model_call(
        self,
        *,
        tenant_id: int,
        campaign_id: int | None,
        model: str,
        estimated_tokens: int,
        estimated_cost_microusd: int,
    ) -> object:
        return None

    def settle_model_call(
        self, reservation: object, *, input_tokens: int, output_tokens: int, cost_microusd: int
    ) -> None:
        return None

    def acquire_send(self, *, tenant_id: int, campaign_id: int, channel: str) -> None:
        return None


NO_LIMITS: CallGate = _NoLimits()
