"""Images: safe opening (pixel limits, truncation), EXIF, a 64-bit DCT perceptual hash, and scan-or-photo triage."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lambdas.document_processor.exceptions import CorruptContentError, DecompressionBombError
from lambdas.document_processor.record import ExifInfo

_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME, _TAG_ORIENTATION = 0x010F, 0x0110, 0x0132, 0x0112
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_TAG_DATETIME_ORIGINAL, _TAG_DATETIME_DIGITIZED, _TAG_OFFSET_TIME_ORIGINAL = 0x9003, 0x9004, 0x9011
_THUMB = 64


@dataclass(frozen=True)
class ImageFacts:
    """What we learn from decoding an image once."""

    width: int
    height: int
    frames: int
    exif: ExifInfo
    orientation: int
    phash: str
    looks_like_document: bool


@contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's own bomb guard at our limit: its warning (over the limit) becomes an error, like its 2x error."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def inspect_image(data: bytes, *, max_pixels: int) -> ImageFacts:
    """Decode `data` once (refusing bombs and truncated files) and return its size, EXIF, pHash and triage."""
    try:
        with _pixel_limit(None):  # header only, no pixel decoded: our own check below words the refusal
            img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptContentError(f"not a decodable image: {exc}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise CorruptContentError(f"image header declares an empty size {width}x{height}")
    # Our explicit limit, from the header, before anything is decoded.
    if width * height > max_pixels:
        raise DecompressionBombError(
            f"image is {width}x{height} = {width * height:,} pixels, over the {max_pixels:,} pixel limit "
            "(CLAIMS_DOCUMENT_MAX_PIXELS): possible decompression bomb, not decoded")
    exif = read_exif(img)
    orientation = _orientation(img)
    frames = getattr(img, "n_frames", 1)
    if img.format == "JPEG":
        # DCT scaling in the decoder: every byte is still entropy-decoded (truncation is still caught),
        # but the pixels produced are ~1/64, which makes photos cheap.
        img.draft(img.mode, (_THUMB * 2, _THUMB * 2))
    with _pixel_limit(max_pixels):  # and Pillow's own guard while decoding, in case a decoder disagrees
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecompressionBombError(f"possible decompression bomb: {exc} (CLAIMS_DOCUMENT_MAX_PIXELS)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise CorruptContentError(f"truncated or corrupt {img.format or 'image'} data: {exc}") from None
    small = _thumbnail(img, orientation)
    return ImageFacts(width=width, height=height, frames=frames, exif=exif, orientation=orientation,
                      phash=dct_phash(small), looks_like_document=looks_like_document(small))


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_TAG_ORIENTATION, 1))
    except (TypeError, ValueError):
        return 1


def _thumbnail(img: Image.Image, orientation: int) -> Image.Image:
    small = img.convert("RGB") if img.mode not in ("RGB", "L") else img
    small.thumbnail((_THUMB * 2, _THUMB * 2), Image.Resampling.BILINEAR)
    if orientation != 1:
        small.getexif()[_TAG_ORIENTATION] = orientation
        small = ImageOps.exif_transpose(small)
    return small


def dct_phash(img: Image.Image) -> str:
    """64-bit perceptual hash (DCT of a 32x32 grey image, 8x8 lowest frequencies vs their median), 16 hex chars.

    Same construction as imagehash.phash: similar pictures differ in few bits (see `hamming_distance`)."""
    pixels = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = _DCT_8x32 @ pixels @ _DCT_8x32.T
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def _dct_matrix(rows: int, n: int) -> np.ndarray:
    # Unnormalised DCT-II basis (scipy.fftpack.dct type 2): only the ordering of coefficients matters here.
    k = np.arange(rows)[:, None]
    x = np.arange(n)[None, :]
    return 2.0 * np.cos(math.pi * k * (2 * x + 1) / (2 * n))


_DCT_8x32 = _dct_matrix(8, 32)


def hamming_distance(hash_a: str, hash_b: str) -> int:
    """Bits that differ between two hex hashes (0 = same picture; < ~10 near duplicates; ~32 unrelated)."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()


def looks_like_document(small: Image.Image) -> bool:
    """A page (light, colourless background with dark marks) rather than a photo: decides whether to OCR."""
    hsv = np.asarray(small.convert("RGB").convert("HSV"), dtype=np.float32)
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    bright = float((grey > 170).mean())
    saturation = float(hsv[..., 1].mean()) / 255.0
    return bright > 0.55 and saturation < 0.15


def read_exif(img: Image.Image) -> ExifInfo:
    """Capture time, GPS position (decimal degrees) and camera make/model; fields absent or invalid stay None."""
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not cost us the image
        return ExifInfo()
    if not exif:
        return ExifInfo()
    sub = _ifd(exif, _IFD_EXIF)
    stamp = _text(sub.get(_TAG_DATETIME_ORIGINAL)) or _text(sub.get(_TAG_DATETIME_DIGITIZED)) \
        or _text(exif.get(_TAG_DATETIME))
    gps = _ifd(exif, _IFD_GPS)
    return ExifInfo(
        captured_at=_exif_time(stamp, _text(sub.get(_TAG_OFFSET_TIME_ORIGINAL))),
        gps_lat=_gps_degrees(gps.get(2), _text(gps.get(1)), limit=90.0),
        gps_lon=_gps_degrees(gps.get(4), _text(gps.get(3)), limit=180.0),
        camera_make=_text(exif.get(_TAG_MAKE)),
        camera_model=_text(exif.get(_TAG_MODEL)),
    )


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # noqa: BLE001 - broken sub-IFD: treat as absent
        return {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _exif_time(stamp: str | None, offset: str | None) -> str | None:
    if not stamp:
        return None
    try:
        moment = datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset
    return iso


def _gps_degrees(value: Any, ref: str | None, *, limit: float) -> float | None:
    try:
        degrees, minutes, seconds = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60.0 + seconds / 3600.0
    if not math.isfinite(result) or result > limit:
        return None
    if ref and ref.upper()[:1] in ("S", "W"):
        result = -result
    return round(result, 7)
