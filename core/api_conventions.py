"""The API's request conventions, kept in the database so every replica shares them.

Rate limits: a fixed one-minute window per credential, counted by one atomic
`INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (SQLite and PostgreSQL alike): every API
replica of a database counts into the same row, so the limit holds however many there are.

Idempotency keys: the first POST with a key stores its answer; a retry with the same key and
the same request gets that answer back without doing anything again; the same key with another
request is refused (422); a retry while the first is still running is refused (409). The answer
is encrypted with a key derived from the client's Idempotency-Key (never stored) and the
service's secret: an answer may hold an API key's secret or a lead's details. Answers are kept
KEEP_IDEMPOTENT_ANSWERS; `api_housekeeping` (the runner, every few minutes) deletes older ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core.api_tokens import api_token_housekeeping
from core.config import Settings
from core.db import Database, commit_without_waiting_for_disk
from core.errors import Conflict, ValidationError
from core.models import ApiIdempotencyKey, ApiRateCounter

WINDOW_SECONDS = 60
KEEP_IDEMPOTENT_ANSWERS = timedelta(hours=24)
# A first request still "in flight" after this long died with its process: a retry takes over.
IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
MAX_IDEMPOTENCY_KEY_LENGTH = 255
REPLAYED_HEADERS = ("content-type", "location", "etag")
_ENCRYPTION_LABEL = b"leadflow api idempotent answers v1"


# -- rate limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends: the Retry-After of a refused request


def count_request(db: Database, credential: str, limit: int, *, now: datetime | None = None) -> RateDecision:
    """Count one request of `credential` in this minute's window and say whether it may go on."""
    now = now or datetime.now(UTC)
    timestamp = now.timestamp()
    window = int(timestamp // WINDOW_SECONDS)
    reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - timestamp))
    insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ApiRateCounter)
        .values(credential=credential, window_start=window, count=1)
        .on_conflict_do_update(
            index_elements=[ApiRateCounter.credential, ApiRateCounter.window_start],
            set_={"count": ApiRateCounter.count + 1},
        )
        .returning(ApiRateCounter.count)
    )
    with db.session(system=True) as session, session.begin():
        # A counter lost with the last moments before a crash lets a few requests more through;
        # waiting for its commit to reach the disk would cost every request an fsync.
        commit_without_waiting_for_disk(session)
        count = int(session.execute(statement).scalar_one())
    return RateDecision(
        allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset_seconds=reset
    )


# -- idempotency keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdempotentRequest:
    """One POST with an Idempotency-Key, as its caller and content identify it."""

    tenant_id: int
    credential: str
    key: str
    method: str
    path: str
    body: bytes

    @property
    def key_hash(self) -> str:
        return hashlib.sha256(f"{self.credential}\n{self.key}".encode()).hexdigest()

    @property
    def request_hash(self) -> str:
        digest = hashlib.sha256(f"{self.method.upper()}\n{self.path}\n".encode())
        digest.update(self.body)
        return digest.hexdigest()


def check_idempotency_key(key: str) -> str:
    cleaned = key.strip()
    if not cleaned or len(cleaned) > MAX_IDEMPOTENCY_KEY_LENGTH or not cleaned.isprintable():
        error = ValidationError(
            f"the Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters "
            "(a UUID is a good choice)"
        )
        error.field = "Idempotency-Key"  # type: ignore[attr-defined]
        raise error
    return cleaned


def _cipher(settings: Settings, request: IdempotentRequest) -> AESGCM:
    secret = hmac.new(settings.require_cookie_key().encode(), _ENCRYPTION_LABEL, hashlib.sha256).digest()
    key = hmac.new(secret, f"{request.credential}\n{request.key}".encode(), hashlib.sha256).digest()
    return AESGCM(key)


def _seal(settings: Settings, request: IdempotentRequest, answer: StoredAnswer) -> bytes:
    plain = json.dumps({"headers": answer.headers}).encode() + b"\n" + answer.body
    nonce = secrets.token_bytes(12)
    return nonce + _cipher(settings, request).encrypt(nonce, plain, request.key_hash.encode())


def _open(settings: Settings, request: IdempotentRequest, status: int, sealed: bytes) -> StoredAnswer:
    plain = _cipher(settings, request).decrypt(sealed[:12], sealed[12:], request.key_hash.encode())
    head, _, body = plain.partition(b"\n")
    return StoredAnswer(status=status, body=body, headers=json.loads(head)["headers"])


def _mismatch() -> ValidationError:
    error = ValidationError(
        "this Idempotency-Key was used for a different request (another path or body); "
        "use a new key for a new request"
    )
    error.field = "Idempotency-Key"  # type: ignore[attr-defined]
    return error


def begin_idempotent(
    db: Database, settings: Settings, request: IdempotentRequest, *, now: datetime | None = None
) -> StoredAnswer | None:
    """None: the request is the first with its key and goes on (its answer is then `finish`ed).

    Otherwise the first answer to replay. `ValidationError` when the key came with another
    request; `Conflict` while the first request with the key is still running.
    """
    now = now or datetime.now(UTC)
    for _attempt in range(3):
        try:
            with db.session(tenant_id=request.tenant_id) as session, session.begin():
                # Durable with the work's own commit, which flushes the WAL up to it; lost only
                # with that work, and a retry then does it again, as it should.
                commit_without_waiting_for_disk(session)
                session.add(
                    ApiIdempotencyKey(
                        key_hash=request.key_hash, request_hash=request.request_hash, created_at=now
                    )
                )
            return None
        except IntegrityError:
            pass  # the key was seen: read what became of it
        with db.session(tenant_id=request.tenant_id) as session, session.begin():
            row = session.scalars(
                select(ApiIdempotencyKey)
                .where(ApiIdempotencyKey.key_hash == request.key_hash)
                .with_for_update()
            ).one_or_none()
            if row is None:
                continue  # deleted meanwhile (an abandoned first request): try again
            if row.created_at <= now - KEEP_IDEMPOTENT_ANSWERS:
                session.delete(row)  # forgotten: the key is new again
                continue
            if row.request_hash != request.request_hash:
                raise _mismatch()
            if row.status is None or row.response is None:
                if row.created_at <= now - IN_FLIGHT_TIMEOUT:
                    row.created_at = now
                    return None
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed; retry it in a moment"
                )
            return _open(settings, request, row.status, row.response)
    raise Conflict("a request with this Idempotency-Key is still being processed; retry it in a moment")


def finish_idempotent(
    db: Database, settings: Settings, request: IdempotentRequest, answer: StoredAnswer
) -> None:
    """Keep the first request's answer for its retries."""
    with db.session(tenant_id=request.tenant_id) as session, session.begin():
        row = session.scalars(
            select(ApiIdempotencyKey).where(ApiIdempotencyKey.key_hash == request.key_hash)
        ).one_or_none()
        if row is not None:
            row.status = answer.status
            row.response = _seal(settings, request, answer)


def abandon_idempotent(db: Database, request: IdempotentRequest) -> None:
    """Forget a first request that failed on the server's side, so that a retry runs it again."""
    with db.session(tenant_id=request.tenant_id) as session, session.begin():
        session.execute(
            delete(ApiIdempotencyKey)
            .where(ApiIdempotencyKey.key_hash == request.key_hash, ApiIdempotencyKey.status.is_(None))
            .execution_options(synchronize_session=False)
        )


# -- housekeeping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiHousekeeping:
    idempotency_keys: int
    rate_counters: int
    refresh_tokens: int


def api_housekeeping(db: Database, *, now: datetime | None = None) -> ApiHousekeeping:
    """Delete what the API keeps for a while only: answers older than a day, past rate windows,
    refresh tokens expired or revoked over a day ago."""
    now = now or datetime.now(UTC)
    current_window = int(now.timestamp() // WINDOW_SECONDS)
    with db.session(system=True) as session, session.begin():
        answers = session.execute(
            delete(ApiIdempotencyKey).where(ApiIdempotencyKey.created_at <= now - KEEP_IDEMPOTENT_ANSWERS)
        )
        counters = session.execute(
            delete(ApiRateCounter).where(ApiRateCounter.window_start < current_window - 1)
        )
    return ApiHousekeeping(
        idempotency_keys=int(answers.rowcount or 0),  # type: ignore[attr-defined]
        rate_counters=int(counters.rowcount or 0),  # type: ignore[attr-defined]
        refresh_tokens=api_token_housekeeping(db, now=now),
    )
