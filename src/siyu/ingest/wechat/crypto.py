"""WXBizMsgCrypt, as WeChat specifies it for official accounts, mini-programs and WeCom.

AES-256-CBC with key = base64(EncodingAESKey + "="), IV = key[:16], PKCS#7 padding to 32 bytes;
plaintext = 16 random bytes || 4-byte big-endian length || message || receive id (app id or corp
id). Signatures are SHA-1 over the sorted, concatenated parts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.ingest.wechat.errors import CallbackRejectedError

BLOCK = 32


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()


def check_signature(expected: str | None, *parts: str) -> None:
    if not expected or not hmac.compare_digest(sha1_signature(*parts), expected.lower()):
        raise CallbackRejectedError("signature does not match")


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=")
    except binascii.Error as exc:
        raise CallbackRejectedError("EncodingAESKey is not valid") from exc
    if len(key) != 32:
        raise CallbackRejectedError("EncodingAESKey must be 43 characters")
    return key


def decrypt(encoding_aes_key: str, encrypted: str, receive_id: str) -> str:
    key = _key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted)
    except binascii.Error as exc:
        raise CallbackRejectedError("Encrypt is not base64") from exc
    if not data or len(data) % 16:
        raise CallbackRejectedError("Encrypt has a wrong length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= BLOCK:
        raise CallbackRejectedError("bad padding")
    plain = padded[:-pad]
    if len(plain) < 20:
        raise CallbackRejectedError("message too short")
    (length,) = struct.unpack(">I", plain[16:20])
    message, tail = plain[20 : 20 + length], plain[20 + length :]
    if tail.decode(errors="replace") != receive_id:
        raise CallbackRejectedError("message is for another app")
    return message.decode()


def encrypt(encoding_aes_key: str, message: str, receive_id: str, random16: bytes | None = None) -> str:
    key = _key(encoding_aes_key)
    body = message.encode()
    plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + receive_id.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
