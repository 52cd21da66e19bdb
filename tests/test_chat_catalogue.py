"""S1/S2 in chat: following, the catalogue on the menu and by text, picking a gift, help."""

from __future__ import annotations

from storage.models import User


def test_follow_gets_a_welcome_that_says_what_the_account_does(bot, transcript):
    reply = bot.wx.subscribe("o_alice")
    assert reply["MsgType"] == "text"
    assert "礼物" in reply["Content"] and "礼品" in reply["Content"]
    user = User.get_by_id("o_alice")
    assert user.subscribed and user.first_seen <= user.last_seen
    transcript(bot.wx)


def test_menu_gifts_and_the_word_lipin_list_every_gift_with_price_and_number(bot):
    by_menu = bot.wx.click("o_alice", "GIFTS")["Content"]
    by_text = bot.wx.text("o_alice", "礼品")["Content"]
    assert by_menu == by_text
    for number, gift in enumerate(bot.config.gifts, 1):
        price = f"¥{gift.price // 100}.{gift.price % 100:02d}"
        assert f"{number}. {gift.name}  {price}" in by_menu


def test_a_number_picks_a_gift_and_shows_its_card(bot):
    reply = bot.wx.text("o_alice", "2")
    gift = bot.config.gifts[1]
    assert reply["MsgType"] == "news" and reply["ArticleCount"] == "1"
    card = reply["article"]
    assert gift.name in card["Title"] and "¥128.00" in card["Title"]
    assert gift.description in card["Description"]
    assert card["PicUrl"] == f"{bot.url}{gift.image}"
    assert card["Url"] == f"{bot.url}/gifts/{gift.id}"


def test_the_gift_page_and_its_picture_are_served_by_the_bot(bot):
    import requests

    page = requests.get(f"{bot.url}/gifts/{bot.config.gifts[0].id}", timeout=10)
    assert page.status_code == 200 and bot.config.gifts[0].name in page.text
    assert requests.get(f"{bot.url}/gifts/no-such-gift", timeout=10).status_code == 404


def test_a_number_out_of_range_says_which_numbers_exist(bot):
    reply = bot.wx.text("o_alice", "99")["Content"]
    assert "99" in reply and f"1 到 {len(bot.config.gifts)}" in reply


def test_unknown_text_gets_a_short_help_never_silence(bot):
    reply = bot.wx.text("o_alice", "你好呀")
    assert reply["MsgType"] == "text" and "礼品" in reply["Content"]


def test_a_picture_outside_a_form_gets_a_polite_answer(bot):
    assert "文字" in bot.wx.image("o_alice")["Content"]


def test_users_are_recorded_on_first_contact_and_unsubscribe_is_recorded(bot):
    bot.wx.text("o_bob", "礼品")
    bob = User.get_by_id("o_bob")
    assert not bob.subscribed and bob.first_seen
    bot.wx.subscribe("o_bob")
    assert User.get_by_id("o_bob").subscribed
    assert bot.wx.unsubscribe("o_bob") is None  # WeChat shows nothing; we answer "success"
    bob = User.get_by_id("o_bob")
    assert not bob.subscribed and bob.unsubscribed_at is not None


def test_menu_clicks_for_my_gifts_and_orders_answer_when_empty(bot):
    assert "还没有送出" in bot.wx.click("o_new", "MY_GIFTS")["Content"]
    assert "还没有收到" in bot.wx.click("o_new", "MY_ORDERS")["Content"]


def test_healthz_answers_when_the_database_does(bot):
    import requests

    r = requests.get(f"{bot.url}/healthz", timeout=10)
    assert r.status_code == 200 and r.text.strip() == "ok"
