"""The checks a greeting's file passes (bot/media_files.py), on real files: what a picture
keeps (its pixels, its frames) and loses (EXIF, GPS, comments, anything appended), what is
refused and why, a voice turned into AAC by ffmpeg, and the names files are kept under."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from helpers import needs_ffmpeg
from PIL import Image

from bot import media_files
from bot.codes import Code

SAMPLES = Path(__file__).resolve().parent / "samples" / "media"
PHOTO = (SAMPLES / "photo_with_gps.jpg").read_bytes()


def refusal(body: bytes) -> Code:
    with pytest.raises(media_files.Refused) as refused:
        media_files.picture(body)
    return refused.value.code


def test_a_jpeg_loses_its_exif_and_gps_and_anything_appended_and_stands_upright():
    assert b"iPhone" in PHOTO and Image.open(io.BytesIO(PHOTO)).getexif().get_ifd(0x8825)
    kept = media_files.picture(PHOTO + b"PK\x03\x04 a zip riding along")
    assert (kept.ext, kept.content_type) == ("jpg", "image/jpeg")
    assert (
        b"iPhone" not in kept.data and b"Exif" not in kept.data and b"PK\x03\x04" not in kept.data
    )
    image = Image.open(io.BytesIO(kept.data))
    assert dict(image.getexif()) == {} and image.size == (900, 1200)


def test_a_png_loses_its_text_and_a_gif_keeps_its_frames_not_its_comment():
    png = media_files.picture((SAMPLES / "card.png").read_bytes())
    assert b"secret note" not in png.data and Image.open(io.BytesIO(png.data)).info == {}
    gif = media_files.picture((SAMPLES / "wave.gif").read_bytes())
    image = Image.open(io.BytesIO(gif.data))
    assert (gif.ext, image.n_frames) == ("gif", 4) and "comment" not in image.info


def test_a_webp_with_exif_is_kept_as_webp_without_it():
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0110] = "Pixel 9"
    Image.new("RGB", (64, 64), "red").save(out, "WEBP", exif=exif.tobytes())
    kept = media_files.picture(out.getvalue())
    assert kept.content_type == "image/webp" and b"Pixel 9" not in kept.data


def test_what_is_refused_and_why():
    assert refusal(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == Code.MEDIA_NOT_PICTURE
    assert refusal(PHOTO[: len(PHOTO) // 2]) == Code.MEDIA_NOT_PICTURE  # cut short
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, "BMP")
    assert refusal(bmp.getvalue()) == Code.MEDIA_NOT_PICTURE  # a picture, not one of the four
    assert refusal(b"\xff\xd8" + bytes(media_files.MAX_BYTES)) == Code.MEDIA_TOO_BIG
    wide = io.BytesIO()
    Image.new("1", (4097, 1)).save(wide, "PNG")
    assert refusal(wide.getvalue()) == Code.MEDIA_TOO_WIDE


def test_a_small_file_claiming_a_vast_picture_is_refused_before_it_is_decoded():
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 megapixels in a few KB
    assert len(bomb.getvalue()) < 100_000
    started = time.perf_counter()
    assert refusal(bomb.getvalue()) == Code.MEDIA_TOO_WIDE
    assert time.perf_counter() - started < 0.5


def test_the_amr_samples_length_is_counted_from_its_frames():
    assert media_files.amr_seconds((SAMPLES / "greeting.amr").read_bytes()) == pytest.approx(5.06)


@needs_ffmpeg
def test_a_voice_becomes_aac_in_m4a_well_within_its_own_length():
    body = (SAMPLES / "greeting.amr").read_bytes()
    started = time.perf_counter()
    kept = asyncio.run(media_files.voice(body, "amr", "ffmpeg"))
    took = time.perf_counter() - started
    assert (kept.ext, kept.content_type) == ("m4a", "audio/mp4")
    assert kept.data[4:8] == b"ftyp" and kept.data.find(b"moov") < kept.data.find(b"mdat")
    assert took < kept.seconds / 2, f"{took:.2f} s for {kept.seconds} s of voice"


@needs_ffmpeg
def test_a_voice_ffmpeg_cannot_read_is_refused():
    with pytest.raises(media_files.Refused) as refused:
        asyncio.run(media_files.voice(b"#!AMR\n not really", "amr", "ffmpeg"))
    assert refused.value.code == Code.VOICE_UNPLAYABLE


def test_kept_files_have_unguessable_names_and_nothing_else_is_a_path(tmp_path):
    kept = media_files.picture(PHOTO)
    names = {media_files.store(tmp_path, kept) for _ in range(3)}
    assert len(names) == 3 and all(media_files.NAME.fullmatch(n) for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # nothing left aside
    for odd in ("../x.jpg", "a/b.jpg", "", "." * 32 + ".jpg", "A" * 32 + ".svg", "A" * 31 + ".jpg"):
        assert media_files.path_of(tmp_path, odd) is None
