"""What the bot says back in chat, as plain values; `handlers/` turns them into WeChat XML.

Usage::

    Text("你好")
    Card(title="…", description="…", picurl="https://…/tea.png", url="https://…/claim/…")
    Transfer()                            # WeChat's customer service takes the conversation
    as_dict(reply) / from_dict(data)      # kept with the message, for WeChat's retries
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    content: str


@dataclass(frozen=True)
class Card:
    """A one-article news reply: WeChat shows title, description and picture, and opens url."""

    title: str
    description: str
    picurl: str
    url: str


@dataclass(frozen=True)
class Transfer:
    """A transfer_customer_service reply: the message, and the conversation, go to a person at
    WeChat's customer service (多客服); WeChat shows the user nothing of it."""


Reply = Text | Card | Transfer | None


def as_dict(reply: Reply) -> dict:
    if reply is None:
        return {"type": "none"}
    return {"type": type(reply).__name__.lower(), **vars(reply)}  # flat: no deep copy needed


def from_dict(data: dict | None) -> Reply:
    data = dict(data or {"type": "none"})
    kind = data.pop("type")
    return (
        {"text": Text, "card": Card, "transfer": Transfer}[kind](**data) if kind != "none" else None
    )
