"""Typed SQLAlchemy models, one module per area. The schema itself is owned by the Alembic migrations
(``assistant/database/migrations``); tests/assistant/test_database.py checks that both agree.

Every model is importable from here (``from assistant.database.models import Message``).
"""

from assistant.database.models.base import utcnow, Base, UTCDateTime
from assistant.database.models.knowledge import KnowledgeBase, Document, Chunk, IngestionRun, IngestionJob
from assistant.database.models.conversations import Conversation, Message, Alert, Ticket, Feedback
from assistant.database.models.training import ModelVersion, VerifiedAnswer
from assistant.database.models.access import User, LoginAttempt, AuditEntry, ApiKey, ApiRateWindow, ApiConversation
from assistant.database.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "utcnow",
    "Base",
    "UTCDateTime",
    "KnowledgeBase",
    "Document",
    "Chunk",
    "IngestionRun",
    "IngestionJob",
    "Conversation",
    "Message",
    "Alert",
    "Ticket",
    "Feedback",
    "ModelVersion",
    "VerifiedAnswer",
    "User",
    "LoginAttempt",
    "AuditEntry",
    "ApiKey",
    "ApiRateWindow",
    "ApiConversation",
    "Webhook",
    "WebhookDelivery",
]
