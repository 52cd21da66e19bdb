"""The giver pays ([payments] mode "wechatpay"): a share's payment state and unit price, the
attempts to pay (pay_order, one JSAPI order each) and the refunds (one per cause).
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    class Share(Model):
        class Meta:
            database = db
            table_name = "share"

    class PayOrder(Model):
        out_trade_no = CharField(max_length=32, unique=True)
        share = ForeignKeyField(Share, on_delete="RESTRICT")
        payer = CharField(max_length=64)
        amount = IntegerField()
        status = CharField(max_length=8, default="open", index=True)
        prepay_id = CharField(max_length=64, default="")
        transaction_id = CharField(max_length=32, default="")
        created_at = DateTimeField()
        time_expire = DateTimeField()
        paid_at = DateTimeField(null=True)
        closed_at = DateTimeField(null=True)
        checked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "pay_order"

    class Refund(Model):
        cause = CharField(max_length=48, unique=True)
        out_refund_no = CharField(max_length=64, unique=True)
        pay_order = ForeignKeyField(PayOrder, on_delete="RESTRICT")
        share = ForeignKeyField(Share, on_delete="RESTRICT")
        units = IntegerField()
        amount = IntegerField()
        reason = CharField(max_length=16)
        status = CharField(max_length=12, default="pending", index=True)
        refund_id = CharField(max_length=32, default="")
        created_at = DateTimeField()
        updated_at = DateTimeField()
        last_error = TextField(default="")

        class Meta:
            database = db
            table_name = "refund"

    migrator.migrate(migrator.add_column("share", "payment", CharField(max_length=8, default="")))
    migrator.migrate(migrator.add_column("share", "unit_price", IntegerField(default=0)))
    db.create_tables([PayOrder, Refund])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("refund"))
    migrator.migrate(migrator.drop_table("pay_order"))
    migrator.migrate(migrator.drop_column("share", "unit_price"))
    migrator.migrate(migrator.drop_column("share", "payment"))
