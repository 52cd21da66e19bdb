"""An outbox row remembers when an attempt began whose end nobody saw (a timeout, a worker
that died mid-send): outbox.in_doubt_since, so the next attempt asks the vendor first."""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    migrator.migrate(migrator.add_column("outbox", "in_doubt_since", DateTimeField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("outbox", "in_doubt_since"))
