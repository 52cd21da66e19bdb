"""Limits on login codes (issue 23, F2 and F8): who verified a code while WeChat's login knew
their browser (`verified_by`: that mobile is theirs, so never a way to claim their own share),
and an index to count the whole account's codes of the last hour.

Rows sent before this kept the sender's whole IPv6 address in `ip`, where new rows keep its
/64: such old rows count apart from the new ones for the hour their window lasts.
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("mobile_code", "verified_by", CharField(max_length=64, default=""))
    )
    migrator.migrate(migrator.add_index("mobile_code", ("created_at",)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("mobile_code", "mobile_code_created_at"))
    migrator.migrate(migrator.drop_column("mobile_code", "verified_by"))
