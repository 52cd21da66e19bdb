"""A greeting's picture or voice as a file: checked, made safe to show, kept under `[media] dir`.

Usage::

    kept = picture(body)                    # Kept(data, "jpg", "image/jpeg"); or Refused(code)
    kept = await voice(body, "amr", "ffmpeg")   # AAC in .m4a, which every phone browser plays
    name = store(folder, kept)              # "Xq3…(32 characters).jpg": nobody can guess it
    path = path_of(folder, name)            # None for anything that is not such a name
    remove(folder, name)

A picture must be a JPEG, PNG, GIF or WebP of at most MAX_BYTES and MAX_SIDE pixels a side;
Pillow decodes it whatever its name or content type says, and it is encoded anew, so nothing
but its pixels survives: no EXIF (camera, GPS position, time), no comments, no trailing data.
A JPEG is first turned the way its EXIF orientation says, as phones show it. A voice (AMR or
Speex, as WeChat keeps them) is turned by `ffmpeg` into AAC in an .m4a, fed through a pipe
and written into a private temporary folder: no file of the sender's reaches the disk as sent.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from bot.codes import Code

MAX_BYTES = 2 * 1024 * 1024  # a picture as fetched
MAX_SIDE = 4096  # pixels, either side
MAX_VOICE_BYTES = 2 * 1024 * 1024  # WeChat's voice messages are at most a minute: ~100 KB of AMR
VOICE_SECONDS = 30.0  # how long ffmpeg may take before it is stopped
PICTURES = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"),
            "GIF": ("gif", "image/gif"), "WEBP": ("webp", "image/webp")}  # fmt: skip
VOICE = ("m4a", "audio/mp4")
VOICE_FORMATS = ("amr", "speex")  # what WeChat's voice messages are kept in
CONTENT_TYPES = {ext: kind for ext, kind in [*PICTURES.values(), VOICE]}
NAME = re.compile(r"[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp|m4a)")
# Decoding more pixels than the largest allowed picture is refused before it starts (a small
# file may claim a vast image: a decompression bomb).
Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE


class Refused(Exception):
    """The file cannot be a greeting; `code` names templates/errors/<code>.txt."""

    def __init__(self, code: Code):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Kept:
    data: bytes
    ext: str
    content_type: str
    seconds: float = 0.0  # a voice's length


def picture(body: bytes) -> Kept:
    """The picture re-encoded without its metadata; Refused when it may not be shown."""
    if len(body) > MAX_BYTES:
        raise Refused(Code.MEDIA_TOO_BIG)
    try:
        image = Image.open(io.BytesIO(body))
        kind = image.format
        if kind not in PICTURES:
            raise Refused(Code.MEDIA_NOT_PICTURE)
        if max(image.size) > MAX_SIDE:
            raise Refused(Code.MEDIA_TOO_WIDE)
        data = _encoded(image, kind)
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(Code.MEDIA_TOO_WIDE) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise Refused(Code.MEDIA_NOT_PICTURE) from None
    ext, content_type = PICTURES[kind]
    return Kept(data, ext, content_type)


def _encoded(image: Image.Image, kind: str) -> bytes:
    """The pixels alone, in the same format: every frame of a moving GIF or WebP."""
    out = io.BytesIO()
    if kind == "JPEG":
        upright = ImageOps.exif_transpose(image).convert("RGB")  # as the phone showed it
        upright.info = {}
        upright.save(out, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        image.load()
        fresh = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info
                              else "RGB")  # fmt: skip
        fresh.info = {}
        fresh.save(out, "PNG", optimize=True)
    else:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            durations.append(frame.info.get("duration", 100))
            fresh = frame.convert("RGBA")
            fresh.info = {}  # a conversion keeps the frame's comment and such: not here
            frames.append(fresh)
        first, rest = frames[0], frames[1:]
        options = {"save_all": bool(rest), "append_images": rest, "loop": 0,
                   "duration": durations if rest else durations[0]}  # fmt: skip
        if kind == "WEBP":
            first.save(out, "WEBP", quality=85, **options)
        else:
            first.save(out, "GIF", disposal=2, **options)
    return out.getvalue()


def ffmpeg_path(command: str) -> str | None:
    """Where the configured ffmpeg is, or None (then voices fall back to their words)."""
    return shutil.which(command) if command else None


async def voice(body: bytes, fmt: str, ffmpeg: str) -> Kept:
    """The voice as AAC in an .m4a (mono, 22.05 kHz, 32 kbit/s: speech, small, and what every
    phone browser plays); Refused when ffmpeg is missing or cannot read it."""
    if len(body) > MAX_VOICE_BYTES:
        raise Refused(Code.MEDIA_TOO_BIG)
    command = ffmpeg_path(ffmpeg)
    if command is None:
        raise Refused(Code.VOICE_NO_FFMPEG)
    demuxer = ["-f", "amr"] if fmt.lower() == "amr" else []  # Speex comes in Ogg: probed
    with tempfile.TemporaryDirectory(prefix="giftbot-voice-") as folder:
        # The index goes at the front (faststart), so a phone plays while it loads: that
        # rewrites the output, which must be a file, not a pipe.
        target = Path(folder) / "voice.m4a"
        process = await asyncio.create_subprocess_exec(
            command, "-hide_banner", "-loglevel", "error", "-nostdin", *demuxer, "-i", "pipe:0",
            "-map_metadata", "-1", "-vn", "-ac", "1", "-ar", "22050", "-c:a", "aac", "-b:a",
            "32k", "-movflags", "+faststart", "-f", "ipod", str(target),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.wait_for(process.communicate(body), VOICE_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise Refused(Code.VOICE_UNPLAYABLE) from None
        if process.returncode != 0 or not target.is_file() or not target.stat().st_size:
            raise Refused(Code.VOICE_UNPLAYABLE)
        out = target.read_bytes()
    return Kept(out, *VOICE, seconds=amr_seconds(body) if fmt.lower() == "amr" else 0.0)


# AMR-NB's frame sizes by mode (3GPP TS 26.101), header byte included; each frame is 20 ms.
_AMR_FRAME = [13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1]


def amr_seconds(body: bytes) -> float:
    """How long an AMR-NB file plays, counted from its frames (no decoding needed)."""
    at, frames = 6 if body.startswith(b"#!AMR\n") else 0, 0
    while at < len(body):
        at += _AMR_FRAME[(body[at] >> 3) & 0x0F]
        frames += 1
    return round(frames * 0.02, 2)


def store(folder: str | Path, kept: Kept) -> str:
    """Write the file under an unguessable name (written aside, then moved in whole)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(24)}.{kept.ext}"
    aside = folder / f".{name}.part"
    aside.write_bytes(kept.data)
    os.replace(aside, folder / name)
    return name


def path_of(folder: str | Path, name: str) -> Path | None:
    """The kept file's path, for a name `store` could have made; None for any other text."""
    if not NAME.fullmatch(name or ""):
        return None
    return Path(folder) / name


def remove(folder: str | Path, name: str) -> None:
    path = path_of(folder, name)
    if path is not None:
        path.unlink(missing_ok=True)
