"""A merchant of WeChat Pay's platform certificates (no public key configured), and one
switching from them to the public key: the certificates downloaded on first use and kept in
the database for every worker, refreshed in the sweep, a new one learned before it signs, a
serial nobody lists downloaded once (paced) and refused, a download believed only when signed
by a certificate already known; each on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

import pytest
from fakes.wechatpay import new_key
from helpers import migrations_down_through
from paying import (
    balance_holds,
    open_pay_page,
    paying_bot,
    post_notify,
    share_to_pay,
    signed_notification,
    transaction_of,
    unix,
)
from playhouse.migrations import Runner

from bot.money.merchant import Merchant
from bot.money.paydesk import PayDesk
from handlers.standins.wechatpay_wire import answer_headers
from storage import db as storage
from storage.models import CertificateDownload, PlatformCertificate, Share

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def cert_bot(bot_factory, pay_keys, tmp_path):
    with paying_bot(bot_factory, pay_keys, tmp_path, verification="certificates") as pair:
        yield pair


@pytest.fixture
def switching_bot(bot_factory, pay_keys, tmp_path):
    """A bot configured with WeChat Pay's public key, its merchant still in the gray switch."""
    with paying_bot(bot_factory, pay_keys, tmp_path, verification="both") as pair:
        yield pair


@pytest.fixture
def unpaid(cert_bot):
    """A share waiting for its payment, the certificates known for a minute (downloaded for the
    JSAPI order's answer: another download may go now)."""
    bot, pay = cert_bot
    token = share_to_pay(bot, quantity="2")
    number, _ = open_pay_page(bot, token)
    pay.standin.pay(number, notify_after=3600)  # its own notification is kept back
    bot.clock.offset += dt.timedelta(seconds=61)
    return bot, pay, token, number


def downloads(pay) -> int:
    return sum(1 for r in pay.standin.requests if r.path.startswith("/v3/certificates"))


def kept() -> set[str]:
    return {row.serial_no for row in PlatformCertificate.select()}


def another_worker(bot) -> PayDesk:
    """A second worker on the same database: its own desk, nothing in its memory."""
    s = bot.services
    return PayDesk(bot.config, Merchant.from_config(bot.config), s.notices, s.db, s.clock)


def notify(bot, pay, number: str, **signing) -> int:
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot), **signing)
    return post_notify(bot, body, headers).status_code


def test_the_certificates_are_downloaded_on_first_use_and_kept_for_every_worker(cert_bot):
    bot, pay = cert_bot
    assert kept() == set() and bot.config.payments.wechatpay.public_key_id == ""
    token = share_to_pay(bot, quantity="2")

    number, _ = open_pay_page(bot, token)  # its answer is signed by a certificate

    assert downloads(pay) == 1 and kept() == {pay.standin.signing_serial}
    assert CertificateDownload.get_by_id(1).succeeded_at is not None
    assert "Wechatpay-Serial" not in pay.standin.requests[0].headers  # nothing known yet
    open_pay_page(bot, token)
    assert pay.standin.requests[-1].headers["Wechatpay-Serial"] == pay.standin.signing_serial
    pay.standin.pay(number, notify_after=3600)
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))
    worker = another_worker(bot)
    try:
        assert bot.run(worker.notify(headers, body)) == 204  # from the row: no download
    finally:
        worker.close()
    assert downloads(pay) == 1
    assert Share.get(Share.token == token).payment == "paid"
    balance_holds()


def test_a_serial_nobody_lists_is_downloaded_for_once_a_minute_then_refused(unpaid, log_lines):
    bot, pay, token, number = unpaid
    forged = f"{secrets.randbits(159) | 1 << 156:040X}"
    assert downloads(pay) == 1

    assert notify(bot, pay, number, signer=new_key(), serial=forged) == 401
    assert notify(bot, pay, number, signer=new_key(), serial=forged) == 401  # paced: none

    assert downloads(pay) == 2
    bot.clock.offset += dt.timedelta(seconds=61)
    assert notify(bot, pay, number, signer=new_key(), serial=forged) == 401
    assert downloads(pay) == 3
    reasons = [line.get("reason", "") for line in log_lines() if line.get("status") == 401]
    assert any("not one WeChat Pay lists" in reason for reason in reasons), reasons
    assert Share.get(Share.token == token).payment == "unpaid"


def test_a_new_certificate_is_learned_when_it_first_signs_and_the_old_retires(unpaid):
    bot, pay, token, number = unpaid
    old = pay.standin.signing_serial
    new = pay.standin.issue_certificate()  # listed; WeChat Pay starts signing with it later
    pay.standin.sign_next("notification", new)

    assert [a.status for a in pay.deliver()] == [204]  # the download was signed by the old one

    assert downloads(pay) == 2 and kept() == {old, new}
    pay.standin.use_certificate(new)  # the old one's 弃用时间: 24 hours from now
    bot.clock.offset += dt.timedelta(hours=12)
    bot.run(bot.services.sweep_once())  # due: the last download is 12 hours old
    assert downloads(pay) == 3
    old_row = PlatformCertificate.get_by_id(old)
    assert old_row.expires_at < bot.clock() + dt.timedelta(hours=13)
    bot.clock.offset += dt.timedelta(hours=13)
    pay.standin.repeat_notification(pay.standin.notifications[0].id)
    pay.standin.sign_next("notification", old)
    assert [a.status for a in pay.deliver()] == [401]  # signed by a retired certificate
    assert [a.status for a in pay.deliver()] == [204]  # its retry, signed by the new one
    assert Share.get(Share.token == token).payment == "paid"


def test_a_certificate_no_longer_listed_is_no_longer_believed(unpaid):
    bot, pay, token, number = unpaid
    old_key, old = pay.standin.notification_signer
    new = pay.standin.issue_certificate()
    bot.clock.offset += dt.timedelta(hours=12)
    bot.run(bot.services.sweep_once())  # the new one learned while the old one still signs
    pay.standin.use_certificate(new)
    pay.standin.retire_certificate(old)  # delisted at once, though its own end is years away
    bot.clock.offset += dt.timedelta(hours=12)

    bot.run(bot.services.sweep_once())

    assert kept() == {pay.standin.signing_serial}
    assert notify(bot, pay, number, signer=old_key, serial=old) == 401
    assert notify(bot, pay, number) == 204


def test_the_sweep_downloads_when_due_once_for_all_workers(unpaid):
    bot, pay, token, number = unpaid
    worker = another_worker(bot)
    try:
        bot.run(bot.services.sweep_once())
        assert downloads(pay) == 1  # downloaded minutes ago: not due
        bot.clock.offset += dt.timedelta(hours=12, seconds=1)
        bot.run(bot.services.sweep_once())
        bot.run(worker.reconcile_once())  # the other worker's sweep, right after
        assert downloads(pay) == 2
        bot.clock.offset += dt.timedelta(seconds=61)

        async def both() -> list[bool]:
            return await asyncio.gather(
                bot.services.pay.client.refresh_certificates(),
                worker.client.refresh_certificates(),
            )

        assert sorted(bot.run(both())) == [False, True]  # at once: one of them downloads
        assert downloads(pay) == 3
    finally:
        worker.close()


def test_a_download_signed_by_a_certificate_not_known_before_is_not_believed(unpaid):
    bot, pay, token, number = unpaid
    old = pay.standin.signing_serial
    new = pay.standin.issue_certificate()
    pay.standin.sign_next("answer", new)  # the download's answer: by the new certificate
    pay.standin.sign_next("notification", new)

    assert [a.status for a in pay.deliver()] == [401]

    assert downloads(pay) == 2 and kept() == {old}
    assert "not a certificate known before it" in CertificateDownload.get_by_id(1).outcome
    assert Share.get(Share.token == token).payment == "unpaid"


def test_the_first_download_must_be_signed_by_a_certificate_it_brings(cert_bot):
    bot, pay = cert_bot
    pay.standin.signtest_next("answer")  # a signature that fails, on the download itself

    assert bot.run(bot.services.pay.client.refresh_certificates()) is False

    assert kept() == set() and downloads(pay) == 1
    assert "does not verify" in CertificateDownload.get_by_id(1).outcome
    bot.clock.offset += dt.timedelta(seconds=61)
    assert bot.run(bot.services.pay.client.refresh_certificates()) is True
    assert kept() == {pay.standin.signing_serial}


def test_certificates_that_do_not_decrypt_with_our_apiv3_key_are_not_kept(
    bot_factory, pay_keys, tmp_path
):
    options = {"verification": "certificates", "api_v3_key": "z" * 32}  # not the merchant's
    with paying_bot(bot_factory, pay_keys, tmp_path, **options) as (bot, pay):
        assert bot.run(bot.services.pay.client.refresh_certificates()) is False
        assert kept() == set()
        assert "does not decrypt" in CertificateDownload.get_by_id(1).outcome


def test_a_merchant_of_certificates_refuses_a_public_key_it_was_never_given(unpaid, pay_keys):
    bot, pay, token, number = unpaid
    body, headers = signed_notification(pay, transaction_of(pay, number), unix(bot))
    key_signed = answer_headers(pay_keys.platform, "PUB_KEY_ID_0112" + "7" * 24, body, unix(bot))

    assert (
        post_notify(bot, body, key_signed | {"Content-Type": "application/json"}).status_code == 401
    )
    assert post_notify(bot, body, headers).status_code == 204


def test_a_merchant_switching_to_the_public_key_accepts_both_signatures(switching_bot):
    bot, pay = switching_bot
    token = share_to_pay(bot, quantity="2")
    open_pay_page(bot, token)
    assert downloads(pay) == 0  # it asks for key-signed answers, and gets them
    assert pay.standin.requests[0].headers["Wechatpay-Serial"] == pay.standin.public_key_id
    pay.standin.sign_next("answer", pay.standin.signing_serial)  # the gray switch's share

    number, _ = open_pay_page(bot, token)

    assert downloads(pay) == 1 and kept() == {pay.standin.signing_serial}
    pay.standin.pay(number)
    assert [a.status for a in pay.deliver()] == [204]  # signed by the certificate
    pay.standin.repeat_notification(pay.standin.notifications[0].id)
    pay.standin.sign_next("notification", "public_key")
    assert [a.status for a in pay.deliver()] == [204]  # and again, by the public key
    assert Share.get(Share.token == token).payment == "paid"


def test_the_migration_of_the_certificates_goes_down_and_up_again(cert_bot):
    bot, pay = cert_bot
    open_pay_page(bot, share_to_pay(bot))
    runner = Runner(storage.db.obj, directory=str(storage.MIGRATIONS))

    undone = migrations_down_through(runner, "0010_platform_certificates")
    assert not PlatformCertificate.table_exists() and not CertificateDownload.table_exists()
    assert storage.migrate() == undone[::-1]
    assert CertificateDownload.get_by_id(1).tried_at is None and kept() == set()
