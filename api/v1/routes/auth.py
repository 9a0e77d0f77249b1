"""Authentication: the OAuth2 password flow, refreshing and revoking tokens.

`POST /auth/token` takes the form fields `username` and `password` (and `organisation`, or
OAuth2's `client_id`, naming the organisation when the username is in several); the dashboard's
lockout applies. It answers a short-lived access token and a refresh token; `POST /auth/refresh`
uses a refresh token up for a new pair, and `POST /auth/revoke` ends a sign-in (RFC 7009).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, SettingsDep
from api.v1.deps import unauthorized
from api.v1.problems import problem
from core.api_tokens import CredentialRefused, TokenPair, refresh_api_tokens, revoke_api_token, sign_in_api
from core.auth import AMBIGUOUS_USERNAME
from core.errors import LoginRefused

router = APIRouter(prefix="/auth", tags=["authentication"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenOut(BaseModel):
    access_token: str = Field(description="A JWT to send as `Authorization: Bearer ...`")
    refresh_token: str = Field(description="Used once by POST /auth/refresh for the next pair")
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds the access token lives", examples=[900])

    @classmethod
    def of(cls, pair: TokenPair) -> TokenOut:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
        )


@router.post("/token", response_model=TokenOut, summary="Sign in: a username and password for tokens")
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
    organisation: Annotated[
        str | None,
        Form(
            description="Your organisation, when your username is "
            "used in several (OAuth2's client_id works too)"
        ),
    ] = None,
) -> TokenOut | JSONResponse:
    try:
        pair = sign_in_api(
            db, settings, form.username, form.password, organisation=organisation or form.client_id
        )
    except LoginRefused as refused:
        # The password is checked only once the organisation is known: say which field is missing.
        field = "organisation" if str(refused) == AMBIGUOUS_USERNAME else None
        return problem(
            401,
            str(refused),
            instance=request.url.path,
            errors=[{"field": field, "message": str(refused)}] if field else None,
            headers={"WWW-Authenticate": 'Bearer realm="leadflow"', **NO_STORE},
        )
    response.headers.update(NO_STORE)
    return TokenOut.of(pair)


@router.post("/refresh", response_model=TokenOut, summary="A new token pair for a refresh token")
def refresh(
    refresh_token: Annotated[str, Form(description="The refresh token of the last pair")],
    db: DatabaseDep,
    settings: SettingsDep,
    response: Response,
) -> TokenOut:
    try:
        pair = refresh_api_tokens(db, settings, refresh_token)
    except CredentialRefused as refused:
        raise unauthorized(str(refused), error="invalid_grant") from None
    response.headers.update(NO_STORE)
    return TokenOut.of(pair)


@router.post("/revoke", status_code=200, summary="End a sign-in (its refresh and access tokens)")
async def revoke(
    token: Annotated[str, Form(description="A refresh token or an access token of the sign-in")],
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    # RFC 7009: the answer is 200 whether or not the token named a sign-in.
    await run_in_threadpool(revoke_api_token, db, settings, token)
    return Response(status_code=200, headers=NO_STORE)
