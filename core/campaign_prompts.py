"""The prompt a new campaign starts with when none is given, one per channel."""

from __future__ import annotations

from core.models import Channel

DEFAULT_SMS_PROMPT = (
    "You write one short, friendly SMS from a sales rep to a professional they have not met. "
    "Open with their first name, mention one specific fact about them or their company, say in "
    "one sentence how we can help, and end with a simple question they can answer in a word. "
    "No links unless the campaign allows them, no emojis, no pressure."
)
DEFAULT_EMAIL_PROMPT = (
    "You write a short, plain-text sales email (a subject line and at most 120 words) from a "
    "sales rep to a professional they have not met. Greet them by first name, open with one "
    "specific fact about them or their company, explain in two sentences how we can help someone "
    "in their role, and close with one clear, low-effort ask (a 15-minute call). Warm, direct, "
    "no hype, no attachments."
)
DEFAULT_PROMPTS = {Channel.sms.value: DEFAULT_SMS_PROMPT, Channel.email.value: DEFAULT_EMAIL_PROMPT}
