"""Every SMS the bot sends, by our template name, with its variables in the order a vendor's
approved template numbers them (Tencent's {1} {2} {3}; Aliyun's are named alike). The config
check and the SMS senders both read it; it imports nothing, so both may.
"""

SMS_TEMPLATES = {
    "order_placed": ("order_no", "gift", "time"),
    "order_shipped": ("order_no", "carrier", "tracking"),
    "order_cancelled": ("order_no", "gift"),
    "login_code": ("code",),
    # Notices to people the chat cannot reach (bot/outgoing/channels.py): a verified mobile, or
    # the mobile someone ordered with.
    "draw_won": ("gift", "time"),  # the claim's deadline
    "draw_lost": ("gift",),
    "reminder": ("gift", "time"),  # the share's expiry
    "refund": ("gift", "amount"),  # ¥336.00
}
