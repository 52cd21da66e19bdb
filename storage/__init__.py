"""Persistence: peewee models, database binding (SQLite or PostgreSQL) and migrations.

Nothing here knows about chat, forms or HTTP; `bot/` calls into it, never the other way.
"""
