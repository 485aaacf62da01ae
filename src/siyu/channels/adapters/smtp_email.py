"""Email over SMTP (SMTPS on 465 or STARTTLS on 587, or plain for a relay on localhost).
Marketing mail carries ``List-Unsubscribe`` (a mailto and an https link, RFC 2369) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), each on one line; one
connection serves a batch."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import ClassVar

from siyu.channels.adapters.base import HTTP_TIMEOUT_SECONDS, ProviderAccount
from siyu.channels.contracts import (
    ChannelKind,
    MessageKind,
    OutboundMessage,
    Outcome,
    PermanentFailure,
    RetryableFailure,
    Sent,
)

# Headers never folded (up to RFC 5322's 998 characters): a folded List-Unsubscribe has broken
# DKIM signatures at some relays.
ONE_LINE_HEADERS = policy.SMTP.clone(max_line_length=998)
# Hard bounces: the mailbox does not exist or refuses mail for good.
_GONE = (550, 551, 553)


def build_email(account: ProviderAccount, m: OutboundMessage) -> EmailMessage:
    sender = account.setting("from_address")
    message = EmailMessage(policy=ONE_LINE_HEADERS)
    message["From"] = formataddr((account.setting("from_name"), sender))
    message["To"] = m.to
    message["Subject"] = m.content.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=m.id, domain=sender.rpartition("@")[2] or None)
    message["X-Siyu-Message-Id"] = m.id
    unsubscribe_url = str(m.content.extra.get("unsubscribe_url", ""))
    if unsubscribe_url:
        links = [f"<{unsubscribe_url}>"]
        mailto = account.setting("unsubscribe_mailto")
        if mailto:
            links.insert(0, f"<mailto:{mailto}?subject=unsubscribe%20{m.id}>")
        message["List-Unsubscribe"] = ", ".join(links)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(m.content.text or " ")
    if m.content.html:
        message.add_alternative(m.content.html, subtype="html")
    return message


class SmtpEmailAdapter:
    provider: ClassVar[str] = "smtp"
    channel: ClassVar[ChannelKind] = ChannelKind.EMAIL
    batch_size: ClassVar[int] = 100

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account

    def _connect(self) -> smtplib.SMTP:
        host = self.account.setting("host")
        port = int(self.account.setting("port", "465"))
        security = self.account.setting("security", "ssl")  # ssl | starttls | none
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=HTTP_TIMEOUT_SECONDS, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=HTTP_TIMEOUT_SECONDS)
            if security == "starttls":
                smtp.starttls(context=context)
        username = self.account.setting("username")
        if username:
            smtp.login(username, self.account.secrets.get("password", ""))
        return smtp

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        problems: dict[str, Outcome] = {}
        for m in messages:
            if m.kind is MessageKind.MARKETING and not m.content.extra.get("unsubscribe_url"):
                problems[m.id] = PermanentFailure(
                    "no_unsubscribe", "marketing email needs its one-click unsubscribe link"
                )
            elif not m.content.subject:
                problems[m.id] = PermanentFailure("no_subject", "an email needs a subject")
        todo = [m for m in messages if m.id not in problems]
        if not todo:
            return [problems[m.id] for m in messages]
        try:
            smtp = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            failure: Outcome = PermanentFailure(f"smtp_{exc.smtp_code}", "the SMTP server refused the login")
            return [problems.get(m.id, failure) for m in messages]
        except (OSError, smtplib.SMTPException) as exc:
            failure = RetryableFailure("smtp_connect", f"{type(exc).__name__}: {exc}"[:300])
            return [problems.get(m.id, failure) for m in messages]
        outcomes: dict[str, Outcome] = dict(problems)
        try:
            for m in todo:
                outcomes[m.id] = self._one(smtp, m)
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
        return [outcomes[m.id] for m in messages]

    def _one(self, smtp: smtplib.SMTP, m: OutboundMessage) -> Outcome:
        message = build_email(self.account, m)
        try:
            smtp.send_message(message, from_addr=self.account.setting("from_address"), to_addrs=[m.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            return _refused(code, reason)
        except smtplib.SMTPResponseException as exc:
            return _refused(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return RetryableFailure("smtp", f"{type(exc).__name__}: {exc}"[:300])
        return Sent(provider_id=str(message["Message-ID"]))


def _refused(code: int, reason: bytes | str) -> Outcome:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    if 400 <= code < 500:
        return RetryableFailure(f"smtp_{code}", text, 300.0)
    return PermanentFailure(f"smtp_{code}", text, suppress=code in _GONE)
