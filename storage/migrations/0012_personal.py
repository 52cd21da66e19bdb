"""Making it personal (issue 28): an order records the gift it was swapped from
(order.swapped_from), a share's picture or voice greeting has its row (greeting_media), and a
share keeps the theme its giver picked (share.theme).
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    class Share(Model):
        class Meta:
            database = db
            table_name = "share"

    class GreetingMedia(Model):
        share = ForeignKeyField(Share, on_delete="CASCADE")
        kind = CharField(max_length=8)
        media_id = CharField(max_length=128)
        format = CharField(max_length=16, default="")
        words = TextField(default="")
        status = CharField(max_length=8, default="pending")
        file = CharField(max_length=64, default="", index=True)
        content_type = CharField(max_length=32, default="")
        size = IntegerField(default=0)
        seconds = FloatField(default=0)
        reason = CharField(max_length=32, default="")
        created_at = DateTimeField()
        done_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "greeting_media"
            indexes = ((("share", "kind"), True),)

    db.create_tables([GreetingMedia])
    migrator.migrate(
        migrator.add_column("order", "swapped_from", CharField(max_length=32, default=""))
    )
    migrator.migrate(migrator.add_column("share", "theme", CharField(max_length=16, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("share", "theme"))
    migrator.migrate(migrator.drop_column("order", "swapped_from"))
    migrator.migrate(migrator.drop_table("greeting_media"))
