"""JPush's push API: Basic auth with the AppKey and master secret (1004 otherwise), pushes to
known registration ids (1011 when none is), a rate limit that answers 429 with code 2002."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import Request, Response


@dataclass
class FakeJPush:
    app_key: str
    master_secret: str
    devices: set[str] = field(default_factory=set)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    limited: int = 0  # answer this many requests with the rate limit

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        with self._lock:
            expected = "Basic " + base64.b64encode(f"{self.app_key}:{self.master_secret}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return _error(401, 1004, "Authen failed")
            if self.limited:
                self.limited -= 1
                return _error(429, 2002, "Request times of the app_key exceed the limit of current time window")
            body = json.loads(request.body)
            audience = body.get("audience") or {}
            targets = audience.get("registration_id") or audience.get("alias") or []
            if not (body.get("notification") or {}).get("alert"):
                return _error(400, 1003, "notification alert is empty")
            if not set(targets) & self.devices:
                return _error(400, 1011, "cannot find user by this audience")
            self.pushes.append(body)
            return Response(body=json.dumps({"sendno": "0", "msg_id": str(18100000000 + len(self.pushes))}).encode())


def _error(status: int, code: int, message: str) -> Response:
    return Response(status=status, body=json.dumps({"error": {"code": code, "message": message}}).encode())
