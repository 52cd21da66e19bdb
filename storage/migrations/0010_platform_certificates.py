"""WeChat Pay's platform certificates (issue 23): a merchant without WeChat Pay's public key
verifies with the certificates `GET /v3/certificates` lists, kept here for every worker
(platform_certificate), and one row that paces their downloads (certificate_download).
"""

from peewee import *  # noqa: F403 (the generated migration style)


def up(migrator, db):
    class PlatformCertificate(Model):
        serial_no = CharField(max_length=64, primary_key=True)
        pem = TextField()
        effective_at = DateTimeField()
        expires_at = DateTimeField()
        listed_at = DateTimeField()

        class Meta:
            database = db
            table_name = "platform_certificate"

    class CertificateDownload(Model):
        id = IntegerField(primary_key=True)
        tried_at = DateTimeField(null=True)
        succeeded_at = DateTimeField(null=True)
        outcome = TextField(default="")

        class Meta:
            database = db
            table_name = "certificate_download"

    db.create_tables([PlatformCertificate, CertificateDownload])
    db.execute_sql("INSERT INTO certificate_download (id, outcome) VALUES (1, '')")


def down(migrator, db):
    migrator.migrate(migrator.drop_table("certificate_download"))
    migrator.migrate(migrator.drop_table("platform_certificate"))
