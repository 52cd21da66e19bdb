"""A catalogue version that the database itself keeps: a trigger on `gift` bumps it on every
insert, update and delete, whoever makes the change (a share, an order, `catalogue sync`),
so a cached catalogue is stale exactly when the version moved.
"""

from peewee import *  # noqa: F403 (the generated migration style)

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER gift_catalogue_version_{event.lower()} AFTER {event} ON gift
        BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END"""
    for event in ("INSERT", "UPDATE", "DELETE")
]
POSTGRES_FUNCTION = """CREATE OR REPLACE FUNCTION gift_catalogue_version() RETURNS trigger AS $$
    BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; RETURN NULL; END
    $$ LANGUAGE plpgsql"""
POSTGRES_TRIGGER = """CREATE TRIGGER gift_catalogue_version AFTER INSERT OR UPDATE OR DELETE
    ON gift FOR EACH STATEMENT EXECUTE FUNCTION gift_catalogue_version()"""


def up(migrator, db):
    class CatalogueVersion(Model):
        id = IntegerField(primary_key=True)
        version = BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "catalogue_version"

    db.create_tables([CatalogueVersion])
    db.execute_sql("INSERT INTO catalogue_version (id, version) VALUES (1, 0)")
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(POSTGRES_FUNCTION)
        db.execute_sql(POSTGRES_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            db.execute_sql(trigger)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER gift_catalogue_version ON gift")
        db.execute_sql("DROP FUNCTION gift_catalogue_version()")
    else:
        for event in ("insert", "update", "delete"):
            db.execute_sql(f"DROP TRIGGER gift_catalogue_version_{event}")
    migrator.migrate(migrator.drop_table("catalogue_version"))
