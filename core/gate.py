"""The database-shared call gate: model and send rate limits, and the campaign budget cap.

Every worker of a database passes through the same rows, so the limits hold however many
workers run. Rates use GCRA (the "generic cell rate algorithm"): each limit is one row holding
the theoretical time at which the next unit is free; a caller takes `max(that, now)` as its start
and pushes the row on by `cost / rate` in ONE atomic UPDATE ... RETURNING, then sleeps until its
start. That paces calls evenly at the configured rate, with no burst above it, and queues the
callers in the order they asked, with no polling. Budgets are reservations: a model call holds
its estimated cost against the cap (in a transaction that locks the campaign row) until it is
settled with the real cost, so the cap is exceeded at most by one call's under-estimate.

Clocks are each worker's Unix time: workers on several hosts must keep their clocks in sync (NTP).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.campaigns import pause_campaign_in
from core.config import Settings
from core.db import Database
from core.llm.factory import ModelFactory
from core.models import BudgetReservation, Campaign, CampaignStatus, RateLimit
from core.pipeline.limits import BudgetExceeded
from core.reports import format_usd

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class ModelCallReservation:
    """What `reserve_model_call` hands back, to be given to `settle_model_call`."""

    campaign_id: int | None
    model: str
    estimated_tokens: int
    budget_reservation_id: int | None


def model_requests_key(model: str) -> str:
    return f"model:{model}:requests"


def model_tokens_key(model: str) -> str:
    return f"model:{model}:tokens"


def channel_sends_key(channel: str) -> str:
    return f"send:{channel}"


def campaign_sends_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}:sends"


class DatabaseGate:
    """The `CallGate` of the job runner: limits shared through the database, budgets reserved."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
    ) -> None:
        """`owner` is the worker's id: its budget reservations are renewed with its leases."""
        self.owner = owner
        self.db = db
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._local = threading.local()

    # -- the CallGate protocol ----------------------------------------------------------------

    def reserve_model_call(
        self,
        *,
        tenant_id: int,
        campaign_id: int | None,
        model: str,
        estimated_tokens: int,
        estimated_cost_microusd: int,
    ) -> object:
        """Hold the estimate against the budget, then wait for a request and its tokens."""
        reservation_id = None
        if campaign_id is not None and self._campaign_has_cap(campaign_id):
            reservation_id = self._reserve_budget(campaign_id, max(0, estimated_cost_microusd))
        requests_per_second, tokens_per_second = self._model_rates()
        # One limit after the other: taking both at once would waste the slot of the looser one
        # while the stricter one makes the caller wait.
        self.wait_for(model_requests_key(model), 1.0, requests_per_second)
        self.wait_for(model_tokens_key(model), float(max(1, estimated_tokens)), tokens_per_second)
        self._local.request_paid = True  # the call's first request has its slot
        return ModelCallReservation(campaign_id, model, estimated_tokens, reservation_id)

    def pace_model_request(self, model: str) -> None:
        """Before every request to the model provider, retries included (see `PacedChatModel`).

        The first request of a call used the slot `reserve_model_call` took; a retry after a
        429 waits Retry-After and then takes a new slot like everyone else, instead of arriving
        unpaced on top of the paced stream and drawing the next 429.
        """
        if getattr(self._local, "request_paid", False):
            self._local.request_paid = False
            return
        self.wait_for(model_requests_key(model), 1.0, self._model_rates()[0])

    def settle_model_call(
        self, reservation: object, *, input_tokens: int, output_tokens: int, cost_microusd: int
    ) -> None:
        """Record the real cost against the campaign and correct the token limit by the error."""
        if not isinstance(reservation, ModelCallReservation):
            return
        tokens_per_second = self._model_rates()[1]
        token_error = input_tokens + output_tokens - max(1, reservation.estimated_tokens)
        if tokens_per_second > 0 and token_error:
            self._shift(model_tokens_key(reservation.model), token_error / tokens_per_second)
        if reservation.campaign_id is None:
            return
        if reservation.budget_reservation_id is None and cost_microusd <= 0:
            return  # nothing held, nothing spent (the offline model is free): no write at all
        with self.db.session(system=True) as session, session.begin():
            if reservation.budget_reservation_id is not None:
                session.execute(
                    delete(BudgetReservation).where(
                        BudgetReservation.id == reservation.budget_reservation_id
                    )
                )
            session.execute(
                update(Campaign)
                .where(Campaign.id == reservation.campaign_id)
                .values(spent_microusd=Campaign.spent_microusd + max(0, cost_microusd))
            )

    def acquire_send(self, *, tenant_id: int, campaign_id: int, channel: str) -> None:
        """Wait for the campaign's own send rate, then for the channel's."""
        with self.db.session(system=True, read_only=True) as session:
            per_minute = session.scalar(
                select(Campaign.sends_per_minute).where(Campaign.id == campaign_id)
            )
        if per_minute:
            self.wait_for(campaign_sends_key(campaign_id), 1.0, per_minute / SECONDS_PER_MINUTE)
        self.wait_for(channel_sends_key(channel), 1.0, self._channel_rate(channel))

    # -- rates ------------------------------------------------------------------------------

    def _channel_rate(self, channel: str) -> float:
        """Sends per second of the channel's provider; the outbox sends nothing out, so no limit."""
        provider, rate = {
            "sms": (self.settings.sms_provider, self.settings.sms_sends_per_second),
            "email": (self.settings.email_provider, self.settings.email_sends_per_second),
        }.get(channel, ("outbox", 0.0))
        return 0.0 if provider == "outbox" else rate

    def _model_rates(self) -> tuple[float, float]:
        """Requests and tokens per second; the offline model has no provider, so no limit."""
        if self.settings.llm_provider == "offline":
            return 0.0, 0.0
        return (self.settings.llm_requests_per_minute / SECONDS_PER_MINUTE,
                self.settings.llm_tokens_per_minute / SECONDS_PER_MINUTE)

    def take(self, key: str, cost: float, rate_per_second: float) -> float:
        """Reserve `cost` units of the limit `key`; returns the Unix time at which they are free."""
        now = self.clock()
        if rate_per_second <= 0:
            return now
        interval = cost / rate_per_second
        statement = (
            update(RateLimit)
            .where(RateLimit.key == key)
            .values(
                next_free_at=case(
                    (RateLimit.next_free_at > now, RateLimit.next_free_at), else_=now
                )
                + interval
            )
            .returning(RateLimit.next_free_at)
        )
        with self.db.engine.begin() as conn:
            next_free_at = conn.execute(statement).scalar()
        if next_free_at is None:
            self._create_limit(key)
            with self.db.engine.begin() as conn:
                next_free_at = conn.execute(statement).scalar_one()
        return float(next_free_at) - interval

    def wait_for(self, key: str, cost: float, rate_per_second: float) -> None:
        """Block until `cost` units of the limit `key` are free (returns at once when unlimited)."""
        start = self.take(key, cost, rate_per_second)
        delay = start - self.clock()
        if delay > 0:
            self.sleep(delay)

    def _create_limit(self, key: str) -> None:
        try:
            with self.db.engine.begin() as conn:
                conn.execute(insert(RateLimit).values(key=key, next_free_at=0.0))
        except IntegrityError:
            pass  # another worker created it first: the row is what matters

    def _shift(self, key: str, seconds: float) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(RateLimit)
                .where(RateLimit.key == key)
                .values(next_free_at=RateLimit.next_free_at + seconds)
            )

    # -- budgets ----------------------------------------------------------------------------

    def _campaign_has_cap(self, campaign_id: int) -> bool:
        # Most campaigns have no cap: a read, which takes no write lock on SQLite, spares them
        # the locked reservation transaction.
        with self.db.session(system=True, read_only=True) as session:
            cap = session.scalar(
                select(Campaign.budget_cap_microusd).where(Campaign.id == campaign_id)
            )
        return cap is not None

    def _reserve_budget(self, campaign_id: int, amount: int) -> int | None:
        now = datetime.now(UTC)
        refusal: str | None = None
        with self.db.session(system=True) as session, session.begin():
            # The row lock (PostgreSQL) or the write lock taken at BEGIN (SQLite) serialises the
            # check-and-reserve of every worker for this campaign.
            row = session.execute(
                select(Campaign.budget_cap_microusd, Campaign.spent_microusd)
                .where(Campaign.id == campaign_id)
                .with_for_update(key_share=True)
            ).one_or_none()
            if row is None or row.budget_cap_microusd is None:
                return None
            held = session.scalar(
                select(func.coalesce(func.sum(BudgetReservation.amount_microusd), 0)).where(
                    BudgetReservation.campaign_id == campaign_id,
                    BudgetReservation.expires_at > now,
                )
            ) or 0
            cap, spent = int(row.budget_cap_microusd), int(row.spent_microusd)
            if spent + int(held) + amount > cap:
                refusal = (
                    f"budget cap of {format_usd(cap)} reached ({format_usd(spent)} spent); "
                    "raise the cap and resume the campaign"
                )
                pause_campaign_in(session, campaign_id, refusal, only_from=CampaignStatus.running)
            else:
                reservation = BudgetReservation(
                    campaign_id=campaign_id,
                    amount_microusd=amount,
                    owner=self.owner,
                    expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                )
                session.add(reservation)
                session.flush()
                return reservation.id
        raise BudgetExceeded(refusal)


def renew_budget_reservations(
    db: Database, *, owner: str, now: datetime, lease_seconds: float
) -> int:
    """Keep a live worker's reservations counting, however long its model calls take."""
    with db.session(system=True) as session, session.begin():
        result = session.execute(
            update(BudgetReservation)
            .where(BudgetReservation.owner == owner)
            .values(expires_at=now + timedelta(seconds=lease_seconds))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def release_expired_reservations(db: Database, *, now: datetime | None = None) -> int:
    """Delete the budget reservations of calls whose worker died before settling them."""
    now = now or datetime.now(UTC)
    with db.session(system=True) as session, session.begin():
        result = session.execute(
            delete(BudgetReservation).where(BudgetReservation.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class PacedChatModel(BaseChatModel):
    """A chat model whose every request, retries included, passes the gate's request limit."""

    inner: BaseChatModel
    gate: Any
    paced_as: str  # the model name whose request limit applies

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return f"paced-{self.inner._llm_type}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.gate.pace_model_request(self.paced_as)
        return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class PacedModels(ModelFactory):
    """The model factory of a worker: its models are paced by the gate, request by request."""

    def __init__(self, settings: Settings, gate: DatabaseGate) -> None:
        super().__init__(settings)
        self.gate = gate

    def __call__(self, model: str, temperature: float) -> BaseChatModel:
        return PacedChatModel(inner=super().__call__(model, temperature), gate=self.gate,
                              paced_as=model)
