"""What an adapter is given and what it must do."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx

from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, RetryableFailure

HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ProviderAccount:
    """A workspace's account with a provider: settings in the clear, secrets unsealed only for
    the adapter's use."""

    id: str
    workspace_id: str
    provider: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def setting(self, key: str, default: str = "") -> str:
        value = self.settings.get(key)
        return default if value is None or value == "" else str(value)


class TokenStore(Protocol):
    """Where access tokens live between sends (WeChat, WeCom): shared by every worker, since a
    fresh token makes the previous one expire within minutes."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, token: str, expires_in: float) -> None: ...

    def drop(self, key: str, token: str) -> None: ...


class MemoryTokenStore:
    """Tokens for one process (tests, the sandbox)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._tokens.get(key)
            return found[0] if found and found[1] > time.monotonic() else None

    def put(self, key: str, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + expires_in)

    def drop(self, key: str, token: str) -> None:
        with self._lock:
            if key in self._tokens and self._tokens[key][0] == token:
                del self._tokens[key]


class Adapter(Protocol):
    provider: ClassVar[str]
    channel: ClassVar[ChannelKind]
    # How many messages one call to ``send`` should be given (a provider's batch API).
    batch_size: ClassVar[int]

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        """One outcome per message, in order. Never raises for the provider's answers."""
        ...


def lookup(adapter: Adapter, messages: Sequence[OutboundMessage]) -> list[Outcome | None] | None:
    """Ask the provider which of ``messages`` it took (``Sent``) and which it never got (None),
    for an adapter whose provider can tell (a ``lookup`` method); None when it cannot."""
    ask = getattr(adapter, "lookup", None)
    if ask is None:
        return None
    try:
        return list(ask(messages))
    except LookupError:  # this account of the provider cannot tell
        return None


def http_client(account: ProviderAccount, default_endpoint: str) -> httpx.Client:
    """A client for the provider's API; ``endpoint`` in the account's settings points it
    elsewhere (a regional host, a proxy, a local fake)."""
    return httpx.Client(base_url=account.setting("endpoint", default_endpoint), timeout=HTTP_TIMEOUT_SECONDS)


def network_failure(exc: httpx.HTTPError) -> RetryableFailure:
    return RetryableFailure("network", f"{type(exc).__name__}: {exc}"[:300])


def http_failure(response: httpx.Response) -> RetryableFailure:
    """An answer that is not the provider's protocol (a gateway error page): try again later."""
    return RetryableFailure(f"http_{response.status_code}", response.text[:200] or response.reason_phrase)
