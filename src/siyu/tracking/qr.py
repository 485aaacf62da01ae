"""QR codes of short links, as SVG (for print) or PNG."""

from __future__ import annotations

import io
from typing import Literal

import segno

QrFormat = Literal["svg", "png"]
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def qr_image(url: str, fmt: QrFormat, scale: int = 8) -> bytes:
    """The QR code of ``url``, error correction M (a printed code survives a smudge), with the
    standard quiet zone."""
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind=fmt, scale=scale, border=4)
    return out.getvalue()
