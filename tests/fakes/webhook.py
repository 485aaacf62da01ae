"""A webhook receiver that checks siyu's signature as a brand's system should: HMAC-SHA256 of
"<t>.<body>", compared in constant time, and a timestamp within five minutes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import Request, Response


@dataclass
class FakeWebhookReceiver:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer next (then 200)
    forged: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        with self._lock:
            header = request.headers.get("x-siyu-signature", "")
            parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
            digest = hmac.new(self.secret.encode(), parts.get("t", "").encode() + b"." + request.body, hashlib.sha256)
            fresh = parts.get("t", "").isdigit() and abs(time.time() - int(parts["t"])) < 300
            if not fresh or not hmac.compare_digest(digest.hexdigest(), parts.get("v1", "")):
                self.forged += 1
                return Response(status=401, body=b'{"error":"bad signature"}')
            if self.answers:
                status = self.answers.pop(0)
                return Response(status=status, body=b'{"error":"injected"}', headers={"Retry-After": "7"})
            self.received.append(json.loads(request.body))
            return Response(body=b'{"ok":true}', headers={"X-Request-Id": f"req-{len(self.received)}"})
