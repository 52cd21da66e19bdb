"""A picture or a voice as the greeting, over the real server: sent at the blessing step of the
share and draw dialogues, fetched in the background from the fake of WeChat's getMedia (real
JPEG, PNG, GIF and AMR bytes, tests/samples/media/), checked and kept, shown on the pages while
the share lives, deleted by the sweep after it; a file that cannot be used leaves the text
and tells the giver why."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
from pathlib import Path

import pytest
import requests
from helpers import (
    BOTH_DATABASES,
    browser,
    card_of,
    confirm_card,
    free_mode_only,
    monday_morning,
    needs_ffmpeg,
    say,
)
from PIL import Image
from sandboxing import dev_send, dev_session

from storage.models import GreetingMedia, Outbox, Share

SAMPLES = Path(__file__).resolve().parent / "samples" / "media"
PHOTO = (SAMPLES / "photo_with_gps.jpg").read_bytes()
VOICE = (SAMPLES / "greeting.amr").read_bytes()
WORDS = "生日快乐，祝你天天开心"


def share_with(bot, send, giver="o_giver", words="生日快乐！", flow="送") -> str:
    """The share dialogue with `send(giver)` at the blessing step (a picture or a voice), then
    `words` (None: the voice's words answered the step); the claim token."""
    for text in ("1", flow, "1"):
        say(bot, giver, text)
    kept = send(giver)
    if words is not None:
        say(bot, giver, words)
    if flow == "抽奖":
        say(bot, giver, "跳过")  # the draw's time: the default
    assert kept["MsgType"] == "text"
    return confirm_card(bot.wx, giver)["Url"].rsplit("/", 1)[1]


def media_url(page_text: str, ext: str) -> str:
    start = page_text.index("/media/")
    return page_text[start : page_text.index(f".{ext}", start) + len(ext) + 1]


def get(bot, path, **headers):
    return requests.get(f"{bot.url}{path}", headers=headers, timeout=10)


@BOTH_DATABASES
def test_a_picture_becomes_the_greeting_without_its_exif_or_gps(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic-1", PHOTO, "image/jpeg")
    for text in ("1", "送", "1"):
        say(bot, "o_giver", text)
    started = time.monotonic()
    assert "收到你的图片" in bot.wx.image("o_giver", "pic-1")["Content"]
    say(bot, "o_giver", "生日快乐！")
    confirmed = bot.wx.text("o_giver", "确认")
    assert time.monotonic() - started < 5  # nothing was fetched while WeChat waited
    assert not [c for c in bot.fake_wechat.calls if c[0] == "/cgi-bin/media/get"]
    row = GreetingMedia.get()
    assert (row.kind, row.status, row.media_id) == ("picture", "pending", "pic-1")
    token = card_of(bot.wx, "o_giver", confirmed)["Url"].rsplit("/", 1)[1]  # paid, if to be
    friend = browser(bot, "o_friend")

    bot.drain()
    (call,) = [c for c in bot.fake_wechat.calls if c[0] == "/cgi-bin/media/get"]
    assert call[1]["media_id"] == "pic-1" and call[1]["access_token"]
    page = friend.get(f"{bot.url}/claim/{token}", timeout=10).text
    assert 'class="greeting-pic"' in page and "生日快乐！" in page
    answer = get(bot, media_url(page, "jpg"))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert b"iPhone" not in answer.content and b"Exif" not in answer.content
    picture = Image.open(io.BytesIO(answer.content))
    assert dict(picture.getexif()) == {} and picture.size == (900, 1200)  # turned as shown
    kept = Path(bot.config.media.dir) / media_url(page, "jpg").removeprefix("/media/")
    assert kept.read_bytes() == answer.content and len(kept.stem) == 32


@needs_ffmpeg
@BOTH_DATABASES
def test_a_voice_is_kept_with_its_words_and_plays_on_the_page(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("voice-1", VOICE, "audio/amr")
    token = share_with(
        bot, lambda giver: bot.wx.voice(giver, "voice-1", recognition=WORDS), words=None
    )
    assert Share.get().blessing == WORDS  # the words answered the step, as a typed blessing
    bot.drain()
    row = GreetingMedia.get()
    assert (row.status, row.content_type, row.words) == ("ready", "audio/mp4", WORDS)
    assert 5.0 < row.seconds < 5.5
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert 'class="voice-play"' in page and "/static/voice.js" in page and WORDS in page
    audio = get(bot, media_url(page, "m4a"))
    assert audio.headers["Content-Type"] == "audio/mp4" and audio.content[4:8] == b"ftyp"
    ranged = get(bot, media_url(page, "m4a"), Range="bytes=0-99")  # how phones ask for audio
    assert ranged.status_code == 206 and len(ranged.content) == 100


@needs_ffmpeg
def test_a_voice_without_words_waits_for_text_or_跳过(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("voice-2", VOICE, "audio/amr")
    for text in ("1", "送", "1"):
        say(bot, "o_giver", text)
    kept = bot.wx.voice("o_giver", "voice-2")["Content"]
    assert "收到你的语音" in kept and "跳过" in kept
    summary = say(bot, "o_giver", "跳过")
    assert "语音祝福：已收到" in summary
    token = confirm_card(bot.wx, "o_giver")["Url"].rsplit("/", 1)[1]
    bot.drain()
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert 'class="voice-play"' in page and "voice-words" not in page


def test_a_draws_blessing_takes_a_picture_and_a_surprise_shows_it_wrapped(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic-d", PHOTO, "image/jpeg")
    bot.fake_wechat.add_media("pic-s", (SAMPLES / "card.png").read_bytes(), "image/png")
    draw = share_with(bot, lambda g: bot.wx.image(g, "pic-d"), words="新年好运！", flow="抽奖")
    surprise = share_with(bot, lambda g: bot.wx.image(g, "pic-s"), giver="o_other", flow="惊喜")
    bot.drain()
    assert {r.status for r in GreetingMedia.select()} == {"ready"}
    friend = browser(bot, "o_friend")
    assert "greeting-pic" in friend.get(f"{bot.url}/claim/{draw}", timeout=10).text
    page = friend.get(f"{bot.url}/claim/{surprise}", timeout=10).text
    assert "greeting-pic" in page and "明前龙井" not in page
    png = get(bot, media_url(page, "png")).content
    assert b"secret note" not in png and Image.open(io.BytesIO(png)).format == "PNG"


def refused(bot, body: bytes, content_type: str) -> str:
    """Share with a picture WeChat serves as `body`; the giver's notice about it."""
    bot.fake_wechat.add_media("bad", body, content_type)
    token = share_with(bot, lambda giver: bot.wx.image(giver, "bad"))
    bot.drain()
    row = GreetingMedia.get()
    assert row.status == "failed" and row.file == ""
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "greeting-pic" not in page and "生日快乐！" in page  # the text greeting stands
    status = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "没能用上" in status
    (note,) = [
        m for m in bot.fake_wechat.messages if "没能用上" in json.dumps(m, ensure_ascii=False)
    ]
    assert note["touser"] == "o_giver"
    return note["text"]["content"]


def noise_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def test_a_picture_over_2_mb_is_refused_and_the_giver_told(bot):
    monday_morning(bot)
    body = noise_png(1000, 1000)
    assert len(body) > 2 * 1024 * 1024
    assert "最多 2 MB" in refused(bot, body, "image/png")
    assert GreetingMedia.get().reason == "media_too_big"


def test_a_picture_over_4096_px_is_refused(bot):
    monday_morning(bot)
    out = io.BytesIO()
    Image.new("L", (4100, 8)).save(out, "PNG")
    assert "4096 像素" in refused(bot, out.getvalue(), "image/png")


def test_a_file_that_is_not_a_picture_is_refused_whatever_its_type_says(bot):
    monday_morning(bot)
    assert "JPEG、PNG、GIF 或 WebP" in refused(bot, b"<svg xmlns='x'>hi</svg>", "image/jpeg")


def test_media_wechat_no_longer_has_are_refused_40007(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("old", PHOTO, "image/jpeg")
    bot.fake_wechat.clock = lambda: time.time() + 3 * 86400 + 60  # past its 3 days
    token = share_with(bot, lambda giver: bot.wx.image(giver, "old"))
    bot.drain()
    assert GreetingMedia.get().reason == "media_gone"
    assert "greeting-pic" not in browser(bot, "o_f").get(f"{bot.url}/claim/{token}").text
    assert any("3 天" in json.dumps(m, ensure_ascii=False) for m in bot.fake_wechat.messages)


def test_an_unreachable_wechat_is_retried_then_refused_on_the_last_attempt(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic-r", PHOTO, "image/jpeg")
    bot.fake_wechat.fail_next("/cgi-bin/media/get", status=502, times=10)
    share_with(bot, lambda giver: bot.wx.image(giver, "pic-r"))
    for _ in range(8):
        Outbox.update(next_attempt_at=bot.clock()).where(Outbox.kind == "greeting_media").execute()
        bot.drain()
    row = GreetingMedia.get()
    assert (row.status, row.reason) == ("failed", "media_unreachable")
    assert Outbox.get(Outbox.kind == "greeting_media").status == "sent"


def test_without_ffmpeg_the_bot_starts_says_so_once_and_a_voice_keeps_its_words(
    bot_factory, log_lines
):
    bot = bot_factory(media={"ffmpeg": "no-such-ffmpeg"})
    warned = [line for line in log_lines() if "ffmpeg not found" in line.get("event", "")]
    assert len(warned) == 1
    monday_morning(bot)
    bot.fake_wechat.add_media("voice-3", VOICE, "audio/amr")
    token = share_with(
        bot, lambda giver: bot.wx.voice(giver, "voice-3", recognition=WORDS), words=None
    )
    bot.drain()
    assert GreetingMedia.get().reason == "voice_no_ffmpeg"
    assert not [c for c in bot.fake_wechat.calls if c[0] == "/cgi-bin/media/get"]
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert WORDS in page and "voice-play" not in page


def test_media_answer_only_while_the_share_lives_and_are_swept_after(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic-w", PHOTO, "image/jpeg")
    token = share_with(bot, lambda giver: bot.wx.image(giver, "pic-w"))
    bot.drain()
    page = browser(bot, "o_friend").get(f"{bot.url}/claim/{token}", timeout=10).text
    url = media_url(page, "jpg")
    kept = Path(bot.config.media.dir) / url.removeprefix("/media/")
    assert get(bot, url).status_code == 200
    for probe in ("/media/", "/media/../config.toml", "/media/%2e%2e%2fconfig.toml",
                  url.replace(".jpg", ".png"), "/media/" + "A" * 32 + ".jpg"):  # fmt: skip
        assert get(bot, probe).status_code == 404, probe
    say(bot, "o_giver", "我送出的", "撤回 1")
    assert get(bot, url).status_code == 404  # withdrawn: over
    assert kept.exists()
    share = Share.get()
    bot.clock.offset += share.revoked_at - bot.clock() + dt.timedelta(hours=72, minutes=1)
    bot.run(bot.services.sweep_once())
    assert not kept.exists() and GreetingMedia.get().status == "deleted"


def test_the_sweep_deletes_an_expired_shares_media_expire_hours_after_its_expiry(bot):
    monday_morning(bot)
    bot.fake_wechat.add_media("pic-x", PHOTO, "image/jpeg")
    share_with(bot, lambda giver: bot.wx.image(giver, "pic-x"))
    bot.drain()
    kept = Path(bot.config.media.dir) / GreetingMedia.get().file
    share = Share.get()
    bot.clock.offset += share.expires_at - bot.clock() + dt.timedelta(hours=1)
    bot.run(bot.services.sweep_once())
    assert kept.exists()  # expired an hour ago: kept [shares] expire_hours more
    bot.clock.offset += dt.timedelta(hours=72)
    bot.run(bot.services.sweep_once())
    assert not kept.exists()


pytestmark = pytest.mark.timeout(120)


# -- the sandbox: a picture from a file input, a voice from the bundled sample ------------


def dev_upload(bot, s, headers, body: bytes, kind: str) -> str:
    answer = s.post(
        f"{bot.url}/dev/upload", data=body, headers={**headers, "Content-Type": kind}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["media_id"]


@needs_ffmpeg
@free_mode_only("the sandbox's paid story is test_pay_sandbox_and_config.py's")
def test_the_sandbox_sends_a_picture_and_a_voice_that_the_same_job_fetches(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    s, headers = dev_session(bot)
    sample = s.get(f"{bot.url}/static/dev/greeting.amr", timeout=10).content
    assert sample.startswith(b"#!AMR\n")
    for text in ("1", "送", "1"):
        dev_send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    picture = dev_upload(bot, s, headers, PHOTO, "image/jpeg")  # 36 KB: over a page's 16 KB
    kept = dev_send(bot, s, headers, openid="dev-giver", kind="image", media_id=picture)
    assert "收到你的图片" in kept["content"]
    voice = dev_upload(bot, s, headers, sample, "audio/amr")
    summary = dev_send(bot, s, headers, openid="dev-giver", kind="voice", media_id=voice,
                       text=WORDS)  # fmt: skip
    assert "祝福图片：已收到" in summary["content"] and "语音祝福：已收到" in summary["content"]
    card = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="确认")
    token = card["url"].rsplit("/", 1)[1]
    bot.drain()
    assert {(r.kind, r.status) for r in GreetingMedia.select()} == {
        ("picture", "ready"),
        ("voice", "ready"),
    }
    assert not bot.fake_wechat.calls  # no Official Account behind the sandbox: its stand-in
    page = s.get(f"{bot.url}/dev/as?openid=dev-friend-1&next=/claim/{token}", timeout=10).text
    assert "greeting-pic" in page and "voice-play" in page and WORDS in page


def test_the_sandbox_stand_in_answers_as_getmedia_does(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    s, headers = dev_session(bot)
    media_id = dev_upload(bot, s, headers, PHOTO, "image/jpeg")
    base = f"{bot.url}/dev/wechat/cgi-bin"
    token = requests.post(f"{base}/stable_token", json={}, timeout=10).json()["access_token"]
    got = requests.get(f"{base}/media/get", params={"access_token": token, "media_id": media_id})
    assert got.content == PHOTO and got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["Content-disposition"] == f'attachment; filename="{media_id}.jpg"'
    gone = requests.get(f"{base}/media/get", params={"access_token": token, "media_id": "x" * 43})
    assert gone.json() == {"errcode": 40007, "errmsg": "invalid media_id"}
    assert (
        requests.get(f"{base}/media/get", params={"media_id": media_id}).json()["errcode"] == 41001
    )
    too_big = s.post(f"{bot.url}/dev/upload", data=b"x" * (11 << 20),
                     headers={**headers, "Content-Type": "image/png"}, timeout=30)  # fmt: skip
    assert too_big.status_code in (400, 413)
