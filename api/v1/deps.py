"""Who is calling: every /api/v1 route that reads or changes tenant data takes `ActorDep`.

`current_actor` turns the request's credentials (a bearer access token or an API key) into the
same core `Actor` the dashboard and the CLI pass to every service, so the permission table in
core.permissions and the tenant scope decide what the call may do; no route checks a role itself.

The credential is read once per request (`resolve_caller`): the conventions middleware reads it
first, to count the request against its credential's rate limit and to scope idempotency keys,
and leaves the answer in the request's scope for `current_actor`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.types import Scope

from core.api_keys import api_key_caller, looks_like_api_key
from core.api_tokens import Caller, CredentialRefused, access_token_caller
from core.config import Settings
from core.db import Database
from core.permissions import Actor

UNAUTHENTICATED = "send an access token (Authorization: Bearer ...) or an API key (X-API-Key)"
CALLER_SCOPE_KEY = "leadflow.caller"

# Declared for the OpenAPI document (the docs' Authorize button); the reading is resolve_caller's.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


def credential_of(scope: Scope) -> str | None:
    """The credential the request carries: X-API-Key, else Authorization's bearer token."""
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    api_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    if api_key:
        return api_key
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def caller_of_credential(db: Database, settings: Settings, credential: str) -> Caller:
    """A bearer API key (it has the key prefix) or an access token, as core reads it."""
    if looks_like_api_key(credential):
        return api_key_caller(db, credential)
    return access_token_caller(db, settings, credential)


def resolve_caller(scope: Scope, db: Database, settings: Settings) -> Caller | CredentialRefused | None:
    """The request's caller, the reason its credential is refused, or None without one (cached)."""
    if CALLER_SCOPE_KEY not in scope:
        credential = credential_of(scope)
        outcome: Caller | CredentialRefused | None = None
        if credential is not None:
            try:
                outcome = caller_of_credential(db, settings, credential)
            except CredentialRefused as refused:
                outcome = refused
        scope[CALLER_SCOPE_KEY] = outcome
    cached: Caller | CredentialRefused | None = scope[CALLER_SCOPE_KEY]
    return cached


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> HTTPException:
    """401 with the WWW-Authenticate challenge RFC 6750 asks for."""
    challenge = 'Bearer realm="leadflow"'
    if error:
        challenge += f', error="{error}", error_description="{detail.replace(chr(34), chr(39))}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def current_actor(
    request: Request,
    _bearer: Annotated[str | None, Security(bearer_scheme)] = None,
    _api_key: Annotated[str | None, Security(api_key_scheme)] = None,
) -> Actor:
    """The caller as an Actor; 401 (with WWW-Authenticate) when the credentials are missing or bad."""
    state = request.app.state
    outcome = resolve_caller(request.scope, state.database, state.settings)
    if outcome is None:
        raise unauthorized(UNAUTHENTICATED, error=None)
    if isinstance(outcome, CredentialRefused):
        raise unauthorized(str(outcome))
    return outcome.actor


ActorDep = Annotated[Actor, Depends(current_actor)]
