"""Authentication through the real server: the password flow, expiry, refresh rotation and reuse,
revocation, and an account's changes taking effect on the very next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select

from core.admin import change_role, set_user_active
from core.api_tokens import start_api_sign_in
from core.auth import reset_password
from core.models import ApiRefreshToken, Role
from core.permissions import Actor
from tests.api.v1.conftest import V1Api
from tests.factories import PASSWORD, make_actor, make_tenant


@pytest.fixture
def admin(v1: V1Api) -> Actor:
    return make_actor(v1.db, make_tenant(v1.db, "Acme"), Role.admin, "ada")


def _sign_in(client: httpx.Client, username: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password, **extra})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_401(response: httpx.Response, says: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert says in response.json()["detail"]


def test_the_password_flow_answers_a_token_pair_that_calls_the_api(v1: V1Api, admin: Actor) -> None:
    client = v1.client()
    response = _sign_in(client, "ada")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["access_token"] and body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    listed = client.get("/api-keys", headers=_bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [], "next_cursor": None}
    # Only the refresh token's hash is kept.
    with v1.db.session(system=True, read_only=True) as session:
        hashes = session.scalars(select(ApiRefreshToken.token_hash)).all()
    assert len(hashes) == 1 and body["refresh_token"] not in hashes[0]


def test_no_credential_and_a_forged_token_are_refused_with_a_challenge(v1: V1Api, admin: Actor) -> None:
    client = v1.client()
    _assert_401(client.get("/api-keys"), "send an access token")
    forged = jwt.encode(
        {
            "sub": str(admin.user_id),
            "tid": admin.tenant_id,
            "sid": "x" * 32,
            "aud": "leadflow-api",
            "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
        },
        "a key that is not the service's one, long enough to sign with",
        algorithm="HS256",
    )
    _assert_401(client.get("/api-keys", headers=_bearer(forged)), "not valid")
    _assert_401(client.get("/api-keys", headers=_bearer("not-a-jwt")), "not valid")


def test_an_expired_access_token_says_it_expired(v1: V1Api, admin: Actor) -> None:
    minted_long_ago = datetime.now(UTC) - timedelta(minutes=16)
    pair = start_api_sign_in(v1.db, v1.settings, admin, now=minted_long_ago)
    response = v1.client().get("/api-keys", headers=_bearer(pair.access_token))
    _assert_401(response, "expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_of_the_configured_lifetime_expires_with_it(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_token_minutes = 1
    issued = datetime.now(UTC) - timedelta(seconds=61)
    pair = start_api_sign_in(v1.db, v1.settings, admin, now=issued)
    assert pair.expires_in == 60
    _assert_401(v1.client().get("/api-keys", headers=_bearer(pair.access_token)), "expired")
    fresh = start_api_sign_in(v1.db, v1.settings, admin)
    assert v1.client().get("/api-keys", headers=_bearer(fresh.access_token)).status_code == 200


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_sign_in(
    v1: V1Api, admin: Actor
) -> None:
    client = v1.client()
    first = _sign_in(client, "ada").json()
    second = client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert client.get("/api-keys", headers=_bearer(rotated["access_token"])).status_code == 200
    # The first refresh token was used up: presenting it again means someone copied it.
    reuse = client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    _assert_401(reuse, "used already")
    _assert_401(client.get("/api-keys", headers=_bearer(rotated["access_token"])), "revoked")
    _assert_401(client.post("/auth/refresh", data={"refresh_token": rotated["refresh_token"]}), "revoked")
    # Another sign-in of the same person is not affected.
    other = _sign_in(client, "ada").json()
    assert client.get("/api-keys", headers=_bearer(other["access_token"])).status_code == 200


def test_an_unknown_refresh_token_is_refused(v1: V1Api, admin: Actor) -> None:
    _assert_401(v1.client().post("/auth/refresh", data={"refresh_token": "made-up"}), "not valid")


@pytest.mark.parametrize("revoke_with", ["refresh_token", "access_token"])
def test_revoking_ends_the_sign_in_at_once(v1: V1Api, admin: Actor, revoke_with: str) -> None:
    client = v1.client()
    pair = _sign_in(client, "ada").json()
    assert client.post("/auth/revoke", data={"token": pair[revoke_with]}).status_code == 200
    _assert_401(client.get("/api-keys", headers=_bearer(pair["access_token"])), "revoked")
    _assert_401(client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]}), "revoked")
    # RFC 7009: an unknown token is answered 200 too, telling nothing.
    assert client.post("/auth/revoke", data={"token": "unknown"}).status_code == 200


def test_a_deactivated_user_is_refused_on_the_next_request(v1: V1Api, admin: Actor) -> None:
    owner = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    client = v1.client(admin)
    assert client.get("/api-keys").status_code == 200
    set_user_active(v1.db, owner, admin.user_id or 0, False)
    _assert_401(client.get("/api-keys"), "deactivated")


def test_a_role_change_applies_on_the_next_request(v1: V1Api, admin: Actor) -> None:
    owner = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    client = v1.client(admin)
    assert client.get("/api-keys").status_code == 200
    change_role(v1.db, owner, admin.user_id or 0, Role.analyst)
    refused = client.get("/api-keys")
    assert refused.status_code == 403
    assert "analyst" in refused.json()["detail"]
    change_role(v1.db, owner, admin.user_id or 0, Role.admin)
    assert client.get("/api-keys").status_code == 200


def test_a_password_reset_ends_the_api_sign_ins(v1: V1Api, admin: Actor) -> None:
    owner = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    client = v1.client()
    pair = _sign_in(client, "ada").json()
    reset_password(v1.db, owner, admin.user_id or 0)
    _assert_401(client.get("/api-keys", headers=_bearer(pair["access_token"])), "revoked")
    _assert_401(client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]}), "revoked")


def test_the_dashboards_lockout_holds_through_the_api(v1: V1Api, admin: Actor) -> None:
    client = v1.client()
    failures = v1.settings.login_max_failures
    for _ in range(failures):
        wrong = _sign_in(client, "ada", "not the password at all")
        assert wrong.status_code == 401
        assert "wrong username or password" in wrong.json()["detail"]
    # Locked: even the right password is refused, with the same answer.
    locked = _sign_in(client, "ada")
    assert locked.status_code == 401
    assert locked.json()["detail"] == wrong.json()["detail"]
    assert "access_token" not in locked.json()


def test_a_username_in_two_organisations_needs_the_organisation(v1: V1Api, admin: Actor) -> None:
    make_actor(v1.db, make_tenant(v1.db, "Globex"), Role.manager, "ada")
    client = v1.client()
    ambiguous = _sign_in(client, "ada")
    assert ambiguous.status_code == 401
    assert ambiguous.json()["errors"][0]["field"] == "organisation"
    assert "more than one organisation" in ambiguous.json()["detail"]
    for field in ("organisation", "client_id"):
        signed_in = _sign_in(client, "ada", **{field: "globex"})
        assert signed_in.status_code == 200, signed_in.text
        # The Globex account is a manager: API keys are not theirs to list.
        listed = client.get("/api-keys", headers=_bearer(signed_in.json()["access_token"]))
        assert listed.status_code == 403


def test_a_temporary_password_gets_no_token(v1: V1Api, admin: Actor) -> None:
    owner = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    reset = reset_password(v1.db, owner, admin.user_id or 0)
    refused = _sign_in(v1.client(), "ada", reset.temporary_password)
    assert refused.status_code == 401
    assert "new password" in refused.json()["detail"]
