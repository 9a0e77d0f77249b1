"""SQLAlchemy 2 typed models: one package for every table of Leadflow, every name importable from here.

Money is stored as integer micro-dollars (`*_microusd`, 1 USD = 1,000,000): exact on SQLite and
PostgreSQL alike and summed in SQL without rounding. Times are stored as UTC and always come back
timezone-aware (`UTCDateTime`).
"""

from __future__ import annotations

from core.models.accounts import (
    VERIFIED_SENDER,
    AuditLog,
    SenderVerification,
    SenderVerificationKind,
    SessionRevocation,
    Tenant,
    User,
    UserSession,
)
from core.models.api_auth import ApiIdempotencyKey, ApiKey, ApiRateCounter, ApiRefreshToken
from core.models.base import (
    DEFAULT_REPLY_STOP_CLASSES,
    FINAL_ENROLMENT_STATUSES,
    FINISHED_CAMPAIGN_STATUSES,
    FIRST_TOUCH_SENT,
    LIVE_CAMPAIGN_STATUSES,
    NAMING_CONVENTION,
    Base,
    BigId,
    CampaignStatus,
    Channel,
    EnrolmentStatus,
    MessageStatus,
    Role,
    SuppressionReason,
    TenantOwned,
    UTCDateTime,
    utcnow,
)
from core.models.campaigns import (
    Campaign,
    CampaignLead,
    CampaignOutcome,
    Event,
    LLMCall,
    Message,
    OutboxMessage,
)
from core.models.inbound import InboundMessage
from core.models.leads import (
    ColumnMapping,
    Lead,
    LeadImport,
    LeadTag,
    Suppression,
)
from core.models.runner import (
    BudgetReservation,
    RateLimit,
    TenantSpend,
    WorkerHeartbeat,
)
from core.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint

TENANT_TABLE_NAMES: frozenset[str] = frozenset(
    mapper.local_table.description
    for mapper in Base.registry.mappers
    if issubclass(mapper.class_, TenantOwned)
)

__all__ = [
    "BigId",
    "utcnow",
    "UTCDateTime",
    "NAMING_CONVENTION",
    "Base",
    "TenantOwned",
    "Role",
    "Channel",
    "SuppressionReason",
    "CampaignStatus",
    "LIVE_CAMPAIGN_STATUSES",
    "FINISHED_CAMPAIGN_STATUSES",
    "EnrolmentStatus",
    "FINAL_ENROLMENT_STATUSES",
    "FIRST_TOUCH_SENT",
    "MessageStatus",
    "DEFAULT_REPLY_STOP_CLASSES",
    "Tenant",
    "SenderVerificationKind",
    "VERIFIED_SENDER",
    "SenderVerification",
    "User",
    "SessionRevocation",
    "UserSession",
    "AuditLog",
    "InboundMessage",
    "LeadImport",
    "ColumnMapping",
    "Lead",
    "LeadTag",
    "Suppression",
    "Campaign",
    "CampaignLead",
    "CampaignOutcome",
    "Message",
    "OutboxMessage",
    "LLMCall",
    "Event",
    "WorkerHeartbeat",
    "RateLimit",
    "BudgetReservation",
    "TenantSpend",
    "ApiRefreshToken",
    "ApiKey",
    "ApiRateCounter",
    "ApiIdempotencyKey",
    "DeliveryStatus",
    "WebhookEndpoint",
    "WebhookDelivery",
    "TENANT_TABLE_NAMES",
]
