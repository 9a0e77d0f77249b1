"""The database-shared call gate: model and send rate limits, campaign caps and monthly budgets.

Every worker of a database passes through the same rows, so the limits hold however many
workers run. Rates use GCRA (the "generic cell rate algorithm"): each limit is one row holding
the theoretical time at which the next unit is free; a caller takes `max(that, now)` as its start
and pushes the row on by `cost / rate` in ONE atomic UPDATE ... RETURNING, then sleeps until its
start. That paces calls evenly at the configured rate, with no burst above it, and queues the
callers in the order they asked, with no polling.

The model's limits adapt to the provider (AIMD, as TCP does): a 429 cuts the share of the
configured rate in use multiplicatively, and every request granted wins a little back,
additively, up to the configured rate. Like TCP's once per round trip, a cut is not repeated
until the slots handed out before it have been used (and the Retry-After has passed): the 429s
that come meanwhile answer requests paced at the old rate, not the new one. The share lives in
the limit's row, so every worker slows down together. A Retry-After longer than a moment means
the provider's window is spent: every worker waits it out.

Budgets are reservations: a model call holds its estimated cost against the campaign's cap and
the tenant's monthly budget (in a transaction that locks the tenant and campaign rows) until it
is settled with the real cost, so a budget is exceeded at most by one call's under-estimate.

Clocks are each worker's Unix time: workers on several hosts must keep their clocks in sync (NTP).

The pipeline and the model calls know only the `CallGate` protocol; `NO_LIMITS` lets previews,
tests and benchmarks run without the database-shared gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import Database
from core.errors import LeadflowError
from core.lifecycle import pause_campaign_in
from core.models import BudgetReservation, Campaign, CampaignStatus, RateLimit, Tenant, TenantSpend
from core.money import MICROUSD_PER_USD
from core.reports import format_usd
from core.webhooks.events import EventType, campaign_ref, emit


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


SECONDS_PER_MINUTE = 60.0
# AIMD: a 429 multiplies the share of the rate in use by this, at most once per hold: until the
# slots already handed out are used, and at least the Retry-After or this (a provider's window)...
RATE_DECREASE = 0.98
RATE_HOLD_SECONDS = 1.0
# ...and every request granted adds this back, up to the full configured rate: 2% in 200
# requests. The rate settles where about one request in 200 (RATE_INCREASE / (1 - RATE_DECREASE))
# meets a 429 that starts a cut.
RATE_INCREASE = 0.0001
RATE_FLOOR = 0.1  # a tenth of the configured rate, however many 429s come
# A Retry-After longer than this is not congestion but a spent window: all workers wait it out.
SHARED_WAIT_AFTER_SECONDS = 2.0
# A request that wakes more than one slot interval (and at least this) after its slot is stale:
# its process was stalled (a busy machine), and sent now it would go out in a burst with the
# requests whose slots came during the stall, on top of the on-time ones after it: the
# provider's window overflows. It takes a new slot instead (the stale one goes unused), at most
# MAX_SLOT_RETAKES times.
STALE_SLOT_SECONDS = 0.05
MAX_SLOT_RETAKES = 3


@dataclass(frozen=True)
class ModelCallReservation:
    """What `reserve_model_call` hands back, to be given to `settle_model_call`."""

    tenant_id: int
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


def spend_month(now: datetime) -> str:
    """The calendar month (UTC) a spend counts in: the month the dashboard's figures use."""
    return now.astimezone(UTC).strftime("%Y-%m")


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
        wait_at_send: bool = False,
    ) -> None:
        """`owner` is the worker's id: its budget reservations are renewed with its leases.

        `wait_at_send`: the models are `PacedModels` (core.llm.paced), so a call's first request
        waits for its slot right before it is sent rather than in `reserve_model_call`: the chat client's own
        work before the send (building the request, LangChain's callbacks) overlaps the wait
        instead of making the request late, and a late request lands in the provider's next
        window on top of the on-time ones.
        """
        self.owner = owner
        self.wait_at_send = wait_at_send
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
        """Hold the estimate against the budgets, then wait for a request and its tokens."""
        reservation_id = None
        if self._has_budget(tenant_id, campaign_id):
            reservation_id = self._reserve_budget(tenant_id, campaign_id, max(0, estimated_cost_microusd))
        requests_per_second, tokens_per_second = self._model_rates()
        # One limit after the other: taking both at once would waste the slot of the looser one
        # while the stricter one makes the caller wait.
        start = self.take(model_requests_key(model), 1.0, requests_per_second)
        if not self.wait_at_send:
            self._sleep_until(start)
        self.wait_for(model_tokens_key(model), float(max(1, estimated_tokens)), tokens_per_second)
        self._local.reserved_start = start  # the call's first request has its slot
        return ModelCallReservation(tenant_id, campaign_id, model, estimated_tokens, reservation_id)

    def pace_model_request(self, model: str) -> None:
        """Before every request to the model provider, retries included (see `PacedChatModel`).

        The first request of a call uses the slot `reserve_model_call` took (and, with
        `wait_at_send`, waits for it here, after the client's own work, so that work does not
        make it late); a retry after a 429 waits Retry-After and then takes a new slot like
        everyone else, instead of arriving unpaced on top of the paced stream and drawing the
        next 429. A request that wakes more than a slot interval (at least STALE_SLOT_SECONDS)
        after its slot takes a new one rather than go out in a burst.
        """
        key, rate = model_requests_key(model), self._model_rates()[0]
        start = getattr(self._local, "reserved_start", None)
        self._local.reserved_start = None
        if start is None:
            start = self.take(key, 1.0, rate)
        if rate <= 0:
            return
        stale_after = max(STALE_SLOT_SECONDS, 1.0 / rate)
        for _ in range(MAX_SLOT_RETAKES):
            self._sleep_until(start)
            if self.clock() - start <= stale_after:
                return
            start = self.take(key, 1.0, rate)  # stale: a fresh slot, not a burst
        self._sleep_until(start)

    def settle_model_call(
        self, reservation: object, *, input_tokens: int, output_tokens: int, cost_microusd: int
    ) -> None:
        """Record the real cost against the campaign and the tenant's month, release the
        reservation, and correct the token limit by the estimate's error."""
        if not isinstance(reservation, ModelCallReservation):
            return
        tokens_per_second = self._model_rates()[1]
        token_error = input_tokens + output_tokens - max(1, reservation.estimated_tokens)
        if tokens_per_second > 0 and token_error:
            self._shift(model_tokens_key(reservation.model), token_error / tokens_per_second)
        if reservation.budget_reservation_id is None and cost_microusd <= 0:
            return  # nothing held, nothing spent: no write at all
        with self.db.session(system=True) as session, session.begin():
            if reservation.budget_reservation_id is not None:
                session.execute(
                    delete(BudgetReservation).where(BudgetReservation.id == reservation.budget_reservation_id)
                )
            if cost_microusd > 0:
                if reservation.campaign_id is not None:
                    session.execute(
                        update(Campaign)
                        .where(Campaign.id == reservation.campaign_id)
                        .values(spent_microusd=Campaign.spent_microusd + cost_microusd)
                    )
                self._add_tenant_spend(session, reservation.tenant_id, cost_microusd)

    def model_rate_limited(self, model: str, retry_after: float | None) -> None:
        """The provider answered 429: back off multiplicatively, shared by every worker.

        One cut per hold: until the slots handed out before the cut are used, and at least the
        Retry-After (or RATE_HOLD_SECONDS); the 429s within it answer requests paced at the old
        rate. A long Retry-After also holds every worker's next request until it has passed.
        """
        now = self.clock()
        hold = max(RATE_HOLD_SECONDS, retry_after or 0.0)
        keys = (model_requests_key(model), model_tokens_key(model))
        values: dict[str, Any] = {
            "rate_factor": case(
                (RateLimit.rate_factor * RATE_DECREASE < RATE_FLOOR, RATE_FLOOR),
                else_=RateLimit.rate_factor * RATE_DECREASE,
            ),
            "cuts_held_until": case(
                (RateLimit.next_free_at > now + hold, RateLimit.next_free_at), else_=now + hold
            ),
        }
        if retry_after is not None and retry_after > SHARED_WAIT_AFTER_SECONDS:
            resume_at = now + retry_after
            values["next_free_at"] = case(
                (RateLimit.next_free_at > resume_at, RateLimit.next_free_at), else_=resume_at
            )
        with self.db.engine.begin() as conn:
            conn.execute(
                update(RateLimit)
                .where(RateLimit.key.in_(keys), RateLimit.cuts_held_until <= now)
                .values(**values)
            )

    def acquire_send(self, *, tenant_id: int, campaign_id: int, channel: str) -> None:
        """Wait for the campaign's own send rate, then for the channel's."""
        with self.db.session(system=True, read_only=True) as session:
            per_minute = session.scalar(select(Campaign.sends_per_minute).where(Campaign.id == campaign_id))
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
        return (
            self.settings.llm_requests_per_minute / SECONDS_PER_MINUTE,
            self.settings.llm_tokens_per_minute / SECONDS_PER_MINUTE,
        )

    def take(self, key: str, cost: float, rate_per_second: float) -> float:
        """Reserve `cost` units of the limit `key`; returns the Unix time at which they are free."""
        now = self.clock()
        if rate_per_second <= 0:
            return now
        # The additive increase: each unit granted wins RATE_INCREASE back, up to the full rate.
        factor = case(
            (RateLimit.rate_factor + RATE_INCREASE > 1.0, 1.0), else_=RateLimit.rate_factor + RATE_INCREASE
        )
        statement = (
            update(RateLimit)
            .where(RateLimit.key == key)
            .values(
                next_free_at=case((RateLimit.next_free_at > now, RateLimit.next_free_at), else_=now)
                + cost / (rate_per_second * factor),
                rate_factor=factor,
            )
            .returning(RateLimit.next_free_at, RateLimit.rate_factor)
        )
        with self.db.engine.begin() as conn:
            row = conn.execute(statement).one_or_none()
        if row is None:
            self._create_limit(key)
            with self.db.engine.begin() as conn:
                row = conn.execute(statement).one()
        next_free_at, rate_factor = float(row[0]), float(row[1])
        return next_free_at - cost / (rate_per_second * rate_factor)

    def wait_for(self, key: str, cost: float, rate_per_second: float) -> None:
        """Block until `cost` units of the limit `key` are free (returns at once when unlimited)."""
        self._sleep_until(self.take(key, cost, rate_per_second))

    def _sleep_until(self, start: float) -> None:
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

    def _has_budget(self, tenant_id: int, campaign_id: int | None) -> bool:
        # Most campaigns and tenants have no budget: a read, which takes no write lock on SQLite,
        # spares them the locked reservation transaction.
        budget = select(Tenant.monthly_budget_microusd).where(Tenant.id == tenant_id).scalar_subquery()
        cap = select(Campaign.budget_cap_microusd).where(Campaign.id == campaign_id).scalar_subquery()
        with self.db.session(system=True, read_only=True) as session:  # one round trip for both
            budget, cap = session.execute(select(budget, cap)).one()
        return budget is not None or cap is not None

    def _reserve_budget(self, tenant_id: int, campaign_id: int | None, amount: int) -> int | None:
        """Hold `amount` against the tenant's month and the campaign's cap, or raise.

        Too large for a whole budget: CallTooLarge, nothing paused. Too large for what is left of
        the tenant's month: every running campaign of the tenant pauses; of the campaign's cap:
        the campaign pauses. Both raise BudgetExceeded, and the pauses commit with the refusal.
        """
        now = datetime.now(UTC)
        with self.db.session(system=True) as session, session.begin():
            # The row locks (PostgreSQL; tenant first, then campaign, always in that order) or the
            # write lock taken at BEGIN (SQLite) serialise every worker's check-and-reserve.
            budget = session.scalar(
                select(Tenant.monthly_budget_microusd)
                .where(Tenant.id == tenant_id)
                .with_for_update(key_share=True)
            )
            campaign = (
                session.execute(
                    select(Campaign.budget_cap_microusd, Campaign.spent_microusd)
                    .where(Campaign.id == campaign_id)
                    .with_for_update(key_share=True)
                ).one_or_none()
                if campaign_id is not None
                else None
            )
            cap = campaign.budget_cap_microusd if campaign is not None else None
            if budget is not None and amount > budget:
                raise CallTooLarge(
                    f"this lead's model call would cost about {format_usd(amount)}, more than the whole "
                    f"monthly budget of {format_usd(budget)}: shorten the lead's notes or the campaign's "
                    "prompt, or raise the budget"
                )
            if cap is not None and amount > cap:
                raise CallTooLarge(
                    f"this lead's model call would cost about {format_usd(amount)}, more than the "
                    f"campaign's whole budget cap of {format_usd(cap)}: shorten the lead's notes or the "
                    "prompt, or raise the cap"
                )
            refusal = self._tenant_refusal(session, tenant_id, budget, amount, now)
            if refusal is not None:
                assert budget is not None
                self._pause_running_campaigns(session, tenant_id, refusal, budget)
            elif campaign is not None and cap is not None:
                held = self._held(session, BudgetReservation.campaign_id == campaign_id, now)
                spent = int(campaign.spent_microusd)
                if spent + held + amount > cap:
                    refusal = (
                        f"budget cap of {format_usd(cap)} reached ({format_usd(spent)} spent); "
                        "raise the cap and resume the campaign"
                    )
                    assert campaign_id is not None
                    if pause_campaign_in(session, campaign_id, refusal, only_from=CampaignStatus.running):
                        emit_budget_reached(session, tenant_id, campaign_id, budget="campaign_cap",
                                            limit_microusd=cap, spent_microusd=spent, reason=refusal)
            if refusal is None:
                reservation = BudgetReservation(
                    tenant_id=tenant_id,
                    campaign_id=campaign_id,
                    amount_microusd=amount,
                    owner=self.owner,
                    expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                )
                session.add(reservation)
                session.flush()
                return reservation.id
        raise BudgetExceeded(refusal)

    def _tenant_refusal(
        self, session: Session, tenant_id: int, budget: int | None, amount: int, now: datetime
    ) -> str | None:
        if budget is None:
            return None
        spent = int(
            session.scalar(
                select(TenantSpend.spent_microusd).where(
                    TenantSpend.tenant_id == tenant_id, TenantSpend.month == spend_month(now)
                )
            )
            or 0
        )
        held = self._held(session, BudgetReservation.tenant_id == tenant_id, now)
        if spent + held + amount <= budget:
            return None
        return (
            f"monthly budget of {format_usd(budget)} reached ({format_usd(spent)} spent this month); "
            "raise it in the admin settings and resume the campaigns"
        )

    @staticmethod
    def _held(session: Session, which: Any, now: datetime) -> int:
        """What the unexpired reservations matching `which` hold."""
        return int(
            session.scalar(
                select(func.coalesce(func.sum(BudgetReservation.amount_microusd), 0)).where(
                    which, BudgetReservation.expires_at > now
                )
            )
            or 0
        )

    @staticmethod
    def _pause_running_campaigns(session: Session, tenant_id: int, reason: str, budget: int) -> None:
        running = session.scalars(
            select(Campaign.id)
            .where(Campaign.tenant_id == tenant_id, Campaign.status == CampaignStatus.running.value)
            .order_by(Campaign.id)
        )
        for campaign_id in list(running):
            if pause_campaign_in(session, campaign_id, reason, only_from=CampaignStatus.running):
                emit_budget_reached(session, tenant_id, campaign_id, budget="monthly_budget",
                                    limit_microusd=budget, spent_microusd=None, reason=reason)

    def _add_tenant_spend(self, session: Session, tenant_id: int, amount: int) -> None:
        """Add to the tenant's spend of this month: one upsert, so concurrent settles never lose one."""
        dialect = postgresql if not self.db.is_sqlite else sqlite
        statement = dialect.insert(TenantSpend).values(
            tenant_id=tenant_id, month=spend_month(datetime.now(UTC)), spent_microusd=amount
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[TenantSpend.tenant_id, TenantSpend.month],
                set_={"spent_microusd": TenantSpend.spent_microusd + statement.excluded.spent_microusd},
            )
        )


def emit_budget_reached(
    session: Session, tenant_id: int, campaign_id: int, *, budget: str, limit_microusd: int,
    spent_microusd: int | None, reason: str,
) -> None:
    """Report a campaign paused by a budget (its own cap, or the tenant's monthly budget)."""
    emit(session, tenant_id, EventType.budget_reached, lambda: {
        "campaign": campaign_ref(session, campaign_id), "budget": budget,
        "limit": {"amount": usd_string(limit_microusd), "currency": "USD"},
        "spent": None if spent_microusd is None else {"amount": usd_string(spent_microusd),
                                                      "currency": "USD"},
        "status": CampaignStatus.paused.value, "reason": reason,
    })


def usd_string(microusd: int) -> str:
    """Dollars as an exact decimal string ("12.500000"), as the API writes money."""
    return format(Decimal(microusd) / MICROUSD_PER_USD, ".6f")


def renew_budget_reservations(db: Database, *, owner: str, now: datetime, lease_seconds: float) -> int:
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
        result = session.execute(delete(BudgetReservation).where(BudgetReservation.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
