"""One-click unsubscribe (RFC 8058): `POST /api/unsubscribe/{token}` unsubscribes, no login;
`GET` shows a confirmation page whose button POSTs (mail scanners follow links: a GET must not
unsubscribe anyone by itself).

Mail clients POST `List-Unsubscribe=One-Click` as a form; the token alone decides, so any POST
with a valid token unsubscribes, and a repeat answers the same. A token this deployment did not
sign answers 404 and changes nothing.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import DatabaseDep
from core.inbound.unsubscribe import InvalidToken, preview_unsubscribe, unsubscribe

router = APIRouter()

# The token is a credential for this one address: not cached, not sent on as a referrer, not indexed.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2937}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:0;"
    "background:#b91c1c;color:#fff;cursor:pointer}"
)


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers=PRIVATE_HEADERS)


def _not_valid() -> HTMLResponse:
    return _page("Link not valid",
                 "<p>This unsubscribe link is not valid. Nothing was changed. Reply to the email "
                 "you received and ask to be removed instead.</p>", 404)


@router.get("/api/unsubscribe/{token}", response_class=HTMLResponse)
def confirm_page(token: str, database: DatabaseDep) -> HTMLResponse:
    """The confirmation page: whose emails, to which address, and a button that POSTs."""
    try:
        preview = preview_unsubscribe(database, token)
    except InvalidToken:
        return _not_valid()
    who = f"<strong>{escape(preview.masked_address)}</strong>"
    if preview.already_unsubscribed:
        return _page("You are unsubscribed",
                     f"<p>{who} receives no more emails from {escape(preview.tenant_name)}.</p>")
    return _page(
        "Unsubscribe",
        f"<p>Stop all emails from {escape(preview.tenant_name)} to {who}?</p>"
        "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        "<button type=\"submit\">Unsubscribe</button></form>",
    )


@router.post("/api/unsubscribe/{token}", response_class=HTMLResponse)
def one_click(token: str, database: DatabaseDep) -> HTMLResponse:
    """Unsubscribe the token's recipient (RFC 8058's POST); a repeat changes nothing."""
    try:
        done = unsubscribe(database, token)
    except InvalidToken:
        return _not_valid()
    return _page("You are unsubscribed",
                 f"<p><strong>{escape(done.masked_address)}</strong> receives no more emails from "
                 f"{escape(done.tenant_name)}.</p>")
