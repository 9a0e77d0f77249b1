"""Errors a user can cause: each message says what is wrong and what to do about it."""

from __future__ import annotations


class LeadflowError(Exception):
    """Base of every error whose message is meant for the person who caused it."""


class ValidationError(LeadflowError):
    """Input that cannot be accepted as it is."""


class NotFound(LeadflowError):
    """The thing asked for does not exist (or belongs to another tenant)."""


class Conflict(LeadflowError):
    """The request clashes with what is already there (a taken name, a wrong state)."""


class PermissionDenied(LeadflowError):
    """The user's role does not allow the action."""


class LoginRefused(LeadflowError):
    """A login was refused: wrong credentials, a locked or a deactivated account."""


class ProviderAccountRefused(LeadflowError):
    """A provider refused the account, not the message: a bad credential, a missing permission, no quota.

    No lead can succeed until a person fixes the account, so the campaign pauses with `reason`
    (which names what to fix and never an account id or key) and the lead is left to be retried
    after resume. The provider did not act on the request: nothing was sent or generated.
    """

    def __init__(self, reason: str, *, provider: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider = provider
