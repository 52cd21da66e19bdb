"""The tables, as peewee models, a module per subject (people, gifting, money, outgoing) on
one base; every model is importable from here.

Usage::

    from storage.models import Gift, Share, db
    with db.atomic():
        Share.create(...)

`db` is a proxy bound at start-up by `storage.db.connect()`. Times are naive
UTC datetimes. The schema itself is created by `storage/migrations/`; a test
checks that the migrations and these models agree.
"""

from storage.models.base import BaseModel, JSONField, db, utc_text, utcnow
from storage.models.gifting import (
    CatalogueVersion,
    DrawEntry,
    Gift,
    GreetingMedia,
    MobileCode,
    Order,
    Share,
    ShareVisit,
)
from storage.models.money import CertificateDownload, PayOrder, PlatformCertificate, Refund
from storage.models.outgoing import ApiToken, Outbox, SubscriptionGrant
from storage.models.people import Conversation, InboundMessage, PushNonce, User

ALL_MODELS = [
    User, Gift, Share, Order, ShareVisit, Conversation, InboundMessage, PushNonce, Outbox,
    ApiToken, CatalogueVersion, DrawEntry, MobileCode, PayOrder, Refund, PlatformCertificate,
    CertificateDownload, SubscriptionGrant, GreetingMedia,
]  # fmt: skip

__all__ = [
    "ALL_MODELS", "ApiToken", "BaseModel", "CatalogueVersion", "CertificateDownload",
    "Conversation", "DrawEntry", "Gift", "GreetingMedia", "InboundMessage", "JSONField",
    "MobileCode", "Order", "Outbox", "PayOrder", "PlatformCertificate", "PushNonce", "Refund",
    "Share", "ShareVisit", "SubscriptionGrant", "User", "db", "utc_text", "utcnow",
]  # fmt: skip
