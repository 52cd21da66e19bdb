"""New ways to give (issue 18): a share's kind (gift, surprise, draw), a surprise's variant
(its giver picks it: the choice would name the gift) and a draw's times; who
joined a draw (draw_entry); the codes that verify a mobile outside WeChat (mobile_code).
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    class Share(Model):
        class Meta:
            database = db
            table_name = "share"

    class DrawEntry(Model):
        share = ForeignKeyField(Share, on_delete="CASCADE")
        openid = CharField(max_length=64)
        via = CharField(max_length=8)
        joined_at = DateTimeField()
        won = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "draw_entry"
            indexes = ((("share", "openid"), True),)

    class MobileCode(Model):
        share = ForeignKeyField(Share, on_delete="CASCADE")
        phone = CharField(max_length=20)
        ip = CharField(max_length=64)
        code_hash = CharField(max_length=64)
        created_at = DateTimeField()
        expires_at = DateTimeField()
        tries = IntegerField(default=0)
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "mobile_code"
            indexes = ((("phone", "created_at"), False), (("ip", "created_at"), False))

    db.create_tables([DrawEntry, MobileCode])
    migrator.migrate(migrator.add_column("share", "kind", CharField(max_length=8, default="gift")))
    migrator.migrate(migrator.add_column("share", "variant", CharField(max_length=64, default="")))
    migrator.migrate(migrator.add_column("share", "draw_at", DateTimeField(null=True)))
    migrator.migrate(migrator.add_column("share", "drawn_at", DateTimeField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("share", "drawn_at"))
    migrator.migrate(migrator.drop_column("share", "draw_at"))
    migrator.migrate(migrator.drop_column("share", "variant"))
    migrator.migrate(migrator.drop_column("share", "kind"))
    migrator.migrate(migrator.drop_table("mobile_code"))
    migrator.migrate(migrator.drop_table("draw_entry"))
