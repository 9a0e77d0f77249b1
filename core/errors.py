"""Errors a user can cause: each message says what is wrong and what to do about it."""


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
