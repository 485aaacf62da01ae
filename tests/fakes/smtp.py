"""A real SMTP server on 127.0.0.1 (aiosmtpd) that requires a login, keeps every message it
accepts, and refuses some mailboxes as a mail server would: ``gone…`` with 550 (no such user),
``busy…`` with 451 (try again later)."""

from __future__ import annotations

import socket
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    username: str
    password: str
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        local = address.split("@")[0]
        if local.startswith("gone"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self, sink: SmtpSink) -> None:
        self.port = _free_port()
        self.controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=sink.authenticate,
            auth_require_tls=False,
            auth_required=True,
            # smtplib tries PLAIN first; offering only PLAIN keeps a refused login one exchange.
            auth_exclude_mechanism=["LOGIN"],
        )
        with warnings.catch_warnings():  # plain-text AUTH on 127.0.0.1 is the point of a test server
            warnings.simplefilter("ignore")
            self.controller.start()

    def close(self) -> None:
        self.controller.stop()
