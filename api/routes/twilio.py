"""Twilio's webhooks: incoming SMS and delivery receipts, each verified by its signature first.

Twilio signs each request with the account's auth token over the URL it called (the public URL,
LEADFLOW_PUBLIC_URL, plus the path and query) and the form fields; anything that does not verify
gets 403 before a field is read, and nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from twilio.request_validator import (  # type: ignore[import-untyped]
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from api.deps import DatabaseDep, SettingsDep
from core.channels.receipts import apply_twilio_receipt
from core.config import Settings
from core.inbound.sms import receive_sms
from core.inbound.store import tenant_for_sms_number
from core.inbound.urls import LEDGER_KEY_PARAM, TWILIO_SMS_PATH, TWILIO_STATUS_PATH
from core.logs import get_logger

log = get_logger(__name__)

router = APIRouter()

TWIML = "application/xml"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def verified_form(request: Request, settings: Settings) -> FormData:
    """The request's form fields, once its X-Twilio-Signature verifies; 403 otherwise."""
    signature = request.headers.get(SIGNATURE_HEADER)
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token or not settings.public_url or not signature:
        log.warning(
            "twilio_webhook_refused",
            path=request.url.path,
            reason="no signature"
            if token and settings.public_url
            else "LEADFLOW_TWILIO_AUTH_TOKEN or LEADFLOW_PUBLIC_URL is not set",
        )
        raise HTTPException(status_code=403, detail="the request is not signed by Twilio")
    form = await request.form()
    url = settings.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not RequestValidator(token).validate(url, form, signature, algorithm):
        log.warning("twilio_webhook_refused", path=request.url.path, reason="the signature does not verify")
        raise HTTPException(status_code=403, detail="the request is not signed by Twilio")
    return form


def twiml_message(text: str | None) -> Response:
    """A TwiML answer: one SMS back to the sender, or none."""
    body = (
        EMPTY_TWIML
        if not text
        else (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(text)}</Message></Response>'
        )
    )
    return Response(content=body, media_type=TWIML)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post(TWILIO_SMS_PATH)
async def incoming_sms(request: Request, settings: SettingsDep, database: DatabaseDep) -> Response:
    """An SMS to one of the tenants' numbers: stored once per MessageSid; a keyword answered."""
    form = await verified_form(request, settings)
    sid, to_number = _field(form, "MessageSid") or _field(form, "SmsSid"), _field(form, "To")
    if not sid:
        raise HTTPException(status_code=400, detail="MessageSid is missing")
    tenant_id = await run_in_threadpool(tenant_for_sms_number, database, to_number)
    if tenant_id is None:
        log.warning("twilio_sms_for_unknown_number", to=to_number, message_sid=sid)
        raise HTTPException(status_code=404, detail=f"no tenant sends from {to_number or 'this number'}")
    answer = await run_in_threadpool(
        lambda: receive_sms(
            database,
            tenant_id=tenant_id,
            from_number=_field(form, "From"),
            to_number=to_number,
            body=_field(form, "Body"),
            message_sid=sid,
            now=datetime.now(UTC),
        )
    )
    return twiml_message(answer.reply)


@router.post(TWILIO_STATUS_PATH)
async def delivery_receipt(request: Request, settings: SettingsDep, database: DatabaseDep) -> Response:
    """A status callback: the message's ledger status moves forward, never back."""
    form = await verified_form(request, settings)
    sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    status = _field(form, "MessageStatus") or _field(form, "SmsStatus")
    code_text = _field(form, "ErrorCode").strip()
    error_code = int(code_text) if code_text.isdigit() else None
    await run_in_threadpool(
        lambda: apply_twilio_receipt(
            database,
            message_sid=sid,
            twilio_status=status,
            error_code=error_code,
            idempotency_key=request.query_params.get(LEDGER_KEY_PARAM),
        )
    )
    return Response(status_code=204)
