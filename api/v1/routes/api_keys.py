"""API keys of the caller's tenant, for admins and the owner: list, create (the secret shown
once), get, revoke. The same core service as Admin's "API keys" section and the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.schemas import Page, UtcDateTime
from core.api_keys import ApiKeyView, create_api_key, get_api_key, list_api_keys, revoke_api_key
from core.models import Role

router = APIRouter(prefix="/api-keys", tags=["api keys"])


class ApiKeyOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="Names the key in lists and logs; the key reads lf_<prefix>_<secret>")
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None = Field(description="To the minute")
    expires_at: UtcDateTime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKeyView) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            role=Role(key.role),
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked=key.revoked,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never again. Send it as X-API-Key")


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=120, examples=["CRM sync"])
    role: Role = Field(description="At most your own role", examples=["manager"])
    expires_days: float | None = Field(
        default=None, gt=0, description="Days until it stops working; null: it works until revoked"
    )


KeyId = Annotated[int, Path(ge=1)]


@router.get("", response_model=Page[ApiKeyOut], summary="The organisation's API keys, newest first")
def list_keys(db: DatabaseDep, actor: ActorDep) -> Page[ApiKeyOut]:
    return Page(items=[ApiKeyOut.of(key) for key in list_api_keys(db, actor)])


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Create an API key")
def create_key(body: ApiKeyIn, db: DatabaseDep, actor: ActorDep, request: Request) -> JSONResponse:
    created = create_api_key(db, actor, name=body.name, role=body.role, expires_days=body.expires_days)
    out = ApiKeyCreated(**ApiKeyOut.of(created.key).model_dump(), key=created.secret)
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"{request.url.path.rstrip('/')}/{created.key.id}", "Cache-Control": "no-store"},
    )


@router.get("/{key_id}", response_model=ApiKeyOut, summary="One API key")
def get_key(key_id: KeyId, db: DatabaseDep, actor: ActorDep, request: Request) -> Response:
    return with_etag(request, ApiKeyOut.of(get_api_key(db, actor, key_id)))


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key: refused from the next request")
def revoke_key(key_id: KeyId, db: DatabaseDep, actor: ActorDep) -> Response:
    revoke_api_key(db, actor, key_id=key_id)
    return Response(status_code=204)
