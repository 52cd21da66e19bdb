"""The edges: the WeChat callback, the web pages, the sandbox and the command line.

They translate requests into calls on `bot/` and render what comes back; no
gifting rule lives here.
"""
