"""Every promise reaches its person (issue 25): the one-time subscriptions people grant on a
page (subscription_grant: one message each, a grant used once), and how each outbox row left
(outbox.sent_by: the customer-service message, the subscription, the template message, or
the SMS it was handed to).
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    class Share(Model):
        class Meta:
            database = db
            table_name = "share"

    class SubscriptionGrant(Model):
        openid = CharField(max_length=64)
        share = ForeignKeyField(Share, on_delete="CASCADE")
        template_id = CharField(max_length=128)
        scene = IntegerField()
        nonce = CharField(max_length=32, unique=True)
        granted_at = DateTimeField()
        used_at = DateTimeField(null=True)
        used_by = CharField(max_length=32, default="")

        class Meta:
            database = db
            table_name = "subscription_grant"

    SubscriptionGrant.add_index(
        SubscriptionGrant.index(
            SubscriptionGrant.openid, SubscriptionGrant.template_id, SubscriptionGrant.scene,
            unique=True, where=SubscriptionGrant.used_at.is_null(),
            name="subscription_grant_unused",
        )
    )  # fmt: skip
    db.create_tables([SubscriptionGrant])
    migrator.migrate(migrator.add_column("outbox", "sent_by", CharField(max_length=64, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("outbox", "sent_by"))
    migrator.migrate(migrator.drop_table("subscription_grant"))
