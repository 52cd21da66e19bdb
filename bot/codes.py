"""Every reason a person is told "not like that", declared once.

Usage::

    raise Invalid(Code.PHONE_INVALID, text=typed)     # a form field refused an answer
    raise Ended(Code.SHARE_EXPIRED)                   # a flow cannot go on
    renderer.error(invalid)                           # templates/errors/phone_invalid.txt

A code's value names its template under `templates/errors/`; a test walks this enum and
finds each template, and finds no template without its code.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    # an answer to a form field
    REQUIRED = "required"
    MARKUP_REFUSED = "markup_refused"
    HIDDEN_CHARACTERS = "hidden_characters"  # any free text (bot/forms/safety.py)
    NAME_EMPTY = "name_empty"
    NAME_TOO_LONG = "name_too_long"
    NAME_INVALID = "name_invalid"
    PHONE_EMPTY = "phone_empty"
    PHONE_INVALID = "phone_invalid"
    PHONE_NOT_MOBILE = "phone_not_mobile"
    ADDRESS_EMPTY = "address_empty"
    ADDRESS_TOO_LONG = "address_too_long"
    ADDRESS_NO_REGION = "address_no_region"
    ADDRESS_NO_DISTRICT = "address_no_district"
    ADDRESS_TOO_SHORT = "address_too_short"
    SLOT_EMPTY = "slot_empty"
    SLOT_OUT_OF_RANGE = "slot_out_of_range"
    SLOT_UNAVAILABLE = "slot_unavailable"
    SLOT_UNKNOWN = "slot_unknown"
    VARIANT_EMPTY = "variant_empty"
    VARIANT_UNKNOWN = "variant_unknown"
    QUANTITY_INVALID = "quantity_invalid"
    QUANTITY_RANGE = "quantity_range"
    BLESSING_TOO_LONG = "blessing_too_long"
    THEME_UNKNOWN = "theme_unknown"
    # sharing a gift
    OUT_OF_STOCK = "out_of_stock"
    GIFT_RETIRED = "gift_retired"
    GIVER_LIMIT = "giver_limit"
    SHARE_RATE = "share_rate"
    # claiming a share
    SHARE_UNKNOWN = "share_unknown"
    SHARE_USED_UP = "share_used_up"
    SHARE_EXPIRED = "share_expired"
    SHARE_REVOKED = "share_revoked"
    OWN_SHARE = "own_share"
    ALREADY_CLAIMED = "already_claimed"
    # taking another gift instead ([shares] swap, bot/gifting/swap.py)
    SWAP_OFF = "swap_off"
    SWAP_NONE = "swap_none"
    SWAP_UNKNOWN = "swap_unknown"
    SWAP_GONE = "swap_gone"
    # a picture or voice greeting that cannot be used (bot/media_files.py, bot/outgoing/media_fetch.py)
    MEDIA_TOO_BIG = "media_too_big"
    MEDIA_NOT_PICTURE = "media_not_picture"
    MEDIA_TOO_WIDE = "media_too_wide"
    MEDIA_GONE = "media_gone"
    MEDIA_UNREACHABLE = "media_unreachable"
    VOICE_NO_FFMPEG = "voice_no_ffmpeg"
    VOICE_UNPLAYABLE = "voice_unplayable"
    # a thank-you note
    THANKS_EMPTY = "thanks_empty"
    THANKS_TOO_LONG = "thanks_too_long"
    THANKS_NO_ORDER = "thanks_no_order"
    THANKS_ALREADY = "thanks_already"
    # withdrawing a share (said to its giver)
    REVOKE_WHICH = "revoke_which"
    REVOKE_ALREADY = "revoke_already"
    REVOKE_CLAIMED = "revoke_claimed"
    REVOKE_EXPIRED = "revoke_expired"
    REVOKE_LAPSED = "revoke_lapsed"
    # a draw (bot/gifting/draws.py)
    DRAW_AT_INVALID = "draw_at_invalid"
    DRAW_AT_RANGE = "draw_at_range"
    DRAW_NOT_DRAWN = "draw_not_drawn"
    DRAW_NOT_WON = "draw_not_won"
    DRAW_CLOSED = "draw_closed"
    # claiming outside WeChat with a verified mobile (bot/gifting/mobile_claims.py)
    MOBILE_RATE_MINUTE = "mobile_rate_minute"
    MOBILE_RATE_HOUR = "mobile_rate_hour"
    MOBILE_RATE_DAY = "mobile_rate_day"
    MOBILE_RATE_IP = "mobile_rate_ip"
    MOBILE_RATE_SHARE = "mobile_rate_share"
    MOBILE_RATE_ACCOUNT = "mobile_rate_account"
    MOBILE_CODE_MISSING = "mobile_code_missing"
    MOBILE_CODE_WRONG = "mobile_code_wrong"
    MOBILE_CODE_EXPIRED = "mobile_code_expired"
    MOBILE_CODE_ENDED = "mobile_code_ended"
    MOBILE_ORDERED = "mobile_ordered"
    MOBILE_OWN_SHARE = "mobile_own_share"
    # paying for a share ([payments] mode "wechatpay")
    SHARE_UNPAID = "share_unpaid"
    SHARE_LAPSED = "share_lapsed"
    PAY_NOT_GIVER = "pay_not_giver"
    PAY_DONE = "pay_done"
    PAY_LAPSED = "pay_lapsed"
    PAY_UNAVAILABLE = "pay_unavailable"


# The refusals that no answer can change: a chat claim form ends on them.
ENDS_A_CLAIM = frozenset(
    {Code.SHARE_USED_UP, Code.SHARE_EXPIRED, Code.SHARE_REVOKED, Code.SHARE_UNKNOWN, Code.OWN_SHARE}
    | {Code.SHARE_UNPAID, Code.SHARE_LAPSED}
    | {Code.DRAW_NOT_DRAWN, Code.DRAW_NOT_WON, Code.MOBILE_ORDERED, Code.MOBILE_OWN_SHARE}
)
