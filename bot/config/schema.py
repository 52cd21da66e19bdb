"""The config's tables as dataclasses: each field an allowed key, its annotation the type
expected, a missing default "required" (bot/config/build.py reads a table into them).

Usage::

    from bot.config import Config          # re-exported there
    config.shares.expire_hours, config.server.is_loopback
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) or localhost: only this machine reaches it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Server:
    public_url: str
    cookie_secret: str
    host: str = "127.0.0.1"
    port: int = 8080
    sandbox: bool = False
    xheaders: bool = False
    metrics_public: bool = False  # /metrics answers anyone, not only this machine

    @property
    def is_public(self) -> bool:
        """Whether anyone but this machine may reach it: then secrets must be real ones."""
        return not (self.sandbox and self.is_loopback)

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry `Secure` when the public address is https, proxy or not."""
        return self.public_url.startswith("https://")

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.public_url).hostname or "")


@dataclass(frozen=True)
class Database:
    url: str = "sqlite:///data/gift-bot.db"
    threads: int = 8  # PostgreSQL: database jobs (and connections) at once per process


@dataclass(frozen=True)
class WeChat:
    token: str
    app_id: str
    app_secret: str
    encoding_aes_key: str = ""
    api_base: str = "https://api.weixin.qq.com"
    oauth_base: str = "https://open.weixin.qq.com"
    mp_base: str = "https://mp.weixin.qq.com"  # where WeChat asks for a one-time subscription
    timeout_seconds: float = 5.0
    retry_seconds: float = 30.0  # first retry of a customer-service message; doubles each time
    max_attempts: int = 6  # then the message is dead (see `outbox list`)
    # A template message (服务号) for notices outside the 48-hour window; empty: none. Its
    # keys: first, keyword1 (the gift), keyword2 (what happened), remark.
    notice_template_id: str = ""
    # The template of one-time subscription messages (一次性订阅消息): pages offer WeChat visitors
    # to hear once of what they wait for (bot/outgoing/channels.py); empty: off.
    subscribe_template_id: str = ""


@dataclass(frozen=True)
class Aliyun:
    access_key_id: str = ""
    access_key_secret: str = ""
    sign_name: str = ""
    template_code: str = ""  # the order SMS: variables order_no, gift, time
    # The other SMS kinds' templates, by name: order_shipped (order_no, carrier, tracking),
    # order_cancelled (order_no, gift), login_code (code), draw_won (gift, time), draw_lost
    # (gift), reminder (gift, time), refund (gift, amount). A kind without one is not sent.
    templates: dict[str, str] = field(default_factory=dict)
    endpoint: str = "dysmsapi.aliyuncs.com"
    protocol: str = "https"


@dataclass(frozen=True)
class Tencent:
    secret_id: str = ""
    secret_key: str = ""
    sdk_app_id: str = ""
    sign_name: str = ""
    template_id: str = ""  # the order SMS: {1} order_no, {2} gift, {3} time
    templates: dict[str, str] = field(default_factory=dict)  # as Aliyun's, in SMS_TEMPLATES order
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    protocol: str = "https"


@dataclass(frozen=True)
class Sms:
    backend: str = "console"
    webhook_url: str = ""
    retry_seconds: float = 30.0
    max_attempts: int = 8
    # Login codes (claiming outside WeChat) in any hour: for one share, and for the whole
    # account; per number and per network the limits are fixed (bot/gifting/mobile_claims.py).
    codes_per_share_hour: int = 20
    codes_per_hour: int = 100
    timeout_seconds: float = 10.0  # how long a send waits for the vendor's answer
    # A send whose answer never came is sent again only once the vendor's records, asked
    # after each retry delay, still do not show it this long after (aliyun and tencent).
    records_lag_seconds: float = 600.0
    aliyun: Aliyun = field(default_factory=Aliyun)
    tencent: Tencent = field(default_factory=Tencent)


@dataclass(frozen=True)
class Shares:
    expire_hours: float = 72.0
    max_quantity: int = 10
    blessing_max_length: int = 60
    max_open_units_per_giver: int = 20  # units one giver may hold reserved in open shares
    max_shares_per_hour: int = 10  # shares one giver may create in any hour
    remind_hours: float = 24.0  # remind the giver (and visitors) this long before expiry; 0: off
    thanks_max_length: int = 100  # characters of a recipient's thank-you note
    draw_hours: float = 24.0  # a draw's default time from its creation to its draw
    # Whether a recipient may take another gift instead before ordering (bot/gifting/swap.py):
    # "off", "same_price" (a gift of the same price) or "up_to_price" (the same or less).
    swap: str = "off"


@dataclass(frozen=True)
class Delivery:
    days_ahead: int = 7
    lead_hours: float = 24.0
    slots: list[str] = field(default_factory=lambda: ["09:00-12:00", "14:00-18:00", "18:00-21:00"])
    closed_dates: list[str] = field(default_factory=list)
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Conversation:
    timeout_minutes: float = 30.0


@dataclass(frozen=True)
class MenuButton:
    name: str
    type: str = "click"
    key: str = ""
    url: str = ""
    sub_button: list[MenuButton] = field(default_factory=list)


@dataclass(frozen=True)
class Menu:
    button: list[MenuButton] = field(default_factory=list)


@dataclass(frozen=True)
class Gift:
    id: str
    name: str
    price: int
    description: str
    image: str
    stock: int
    variants: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WeChatPay:
    """`[payments.wechatpay]`: a direct merchant of WeChat Pay API v3 (JSAPI, public-key mode).
    In the /dev sandbox, with no key paths, a built-in stand-in plays WeChat Pay."""

    mchid: str = ""
    api_v3_key: str = ""  # 32 characters: the AES-256 key of notifications
    private_key_path: str = ""  # the merchant's API private key (PEM)
    cert_serial_no: str = ""  # the merchant API certificate's serial number
    public_key_path: str = ""  # WeChat Pay's public key (PEM): it signs answers and notifications
    public_key_id: str = ""  # PUB_KEY_ID_…
    api_base: str = "https://api.mch.weixin.qq.com"
    timeout_seconds: float = 5.0
    retry_seconds: float = 60.0  # a refund or close that failed is tried again after this, doubling
    max_attempts: int = 10  # then it is dead: `payments list` shows it failed
    reconcile_seconds: float = 120.0  # an order unpaid this long without news is queried


@dataclass(frozen=True)
class Payments:
    """`[payments]`: "free" (the giver pays nothing: a campaign) or "wechatpay" (the giver buys)."""

    mode: str = "free"
    hold_minutes: float = 15.0  # an unpaid share holds its stock this long
    wechatpay: WeChatPay = field(default_factory=WeChatPay)

    @property
    def paid(self) -> bool:
        return self.mode == "wechatpay"


@dataclass(frozen=True)
class Theme:
    """`[[themes]]`: a look for a share's page and card picture (bot/config/themes.py)."""

    id: str
    name: str
    background: str = "#fff7f0"
    accent: str = "#07c160"
    frame: str = ""  # a /static/ PNG laid over the gift's picture


@dataclass(frozen=True)
class Media:
    """`[media]`: a giver's picture or voice as the greeting (bot/gifting/media.py)."""

    dir: str = "data/media"  # where greeting pictures and voices are kept (relative: to the cwd)
    ffmpeg: str = "ffmpeg"  # the command that turns a voice into what phones play; "": none


@dataclass(frozen=True)
class Support:
    """`[support]`: how 人工 / 客服 reach a person. `human`: WeChat's customer service takes the
    conversation (a transfer_customer_service reply); otherwise `contact` is the answer."""

    human: bool = False
    contact: str = ""  # free text: a phone, the hours


@dataclass(frozen=True)
class Config:
    server: Server
    wechat: WeChat
    gifts: list[Gift]
    database: Database = field(default_factory=Database)
    sms: Sms = field(default_factory=Sms)
    shares: Shares = field(default_factory=Shares)
    delivery: Delivery = field(default_factory=Delivery)
    conversation: Conversation = field(default_factory=Conversation)
    menu: Menu = field(default_factory=Menu)
    payments: Payments = field(default_factory=Payments)
    support: Support = field(default_factory=Support)
    media: Media = field(default_factory=Media)
    themes: list[Theme] = field(default_factory=list)
    path: Path | None = None

    @property
    def safe_mode(self) -> bool:
        return bool(self.wechat.encoding_aes_key)
