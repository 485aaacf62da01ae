"""Email through a real SMTP server: login, one-click unsubscribe headers (RFC 2369 / 8058),
HTML and text parts, and bounces as outcomes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from siyu.channels.adapters.base import ProviderAccount
from siyu.channels.adapters.smtp_email import SmtpEmailAdapter
from siyu.channels.contracts import (
    ChannelKind,
    Content,
    MessageKind,
    OutboundMessage,
    PermanentFailure,
    RetryableFailure,
    Sent,
)
from tests.fakes.smtp import SmtpServer, SmtpSink

UNSUB = "https://brand.example/u/tok123"


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, SmtpServer]]:
    sink = SmtpSink("mailer", "s3cret")
    server = SmtpServer(sink)
    yield sink, server
    server.close()


def adapter(port: int, password: str = "s3cret") -> SmtpEmailAdapter:
    return SmtpEmailAdapter(
        ProviderAccount(
            id="chn_e",
            workspace_id="ws_1",
            provider="smtp",
            settings={
                "host": "127.0.0.1",
                "port": str(port),
                "security": "none",
                "from_address": "news@brand.example",
                "from_name": "品牌会员中心",
                "unsubscribe_mailto": "unsubscribe@brand.example",
                "username": "mailer",
            },
            secrets={"password": password},
        )
    )


def email(i: int, to: str, kind: MessageKind = MessageKind.MARKETING, unsubscribe: bool = True) -> OutboundMessage:
    return OutboundMessage(
        id=f"msg_{i}",
        workspace_id="ws_1",
        channel=ChannelKind.EMAIL,
        kind=kind,
        to=to,
        content=Content(
            subject="双11 会员专享",
            text="您好，王女士：会员价已开启。",
            html="<p>您好，<b>王女士</b>：会员价已开启。</p>",
            extra={"unsubscribe_url": UNSUB} if unsubscribe else {},
        ),
    )


def test_marketing_email_arrives_with_one_click_unsubscribe(smtp) -> None:
    sink, server = smtp
    outcomes = adapter(server.port).send([email(1, "wang@example.com"), email(2, "li@example.com")])
    assert all(isinstance(o, Sent) for o in outcomes)
    assert [r.recipients for r in sink.received] == [["wang@example.com"], ["li@example.com"]]
    message = sink.received[0].message
    assert message["List-Unsubscribe"] == f"<mailto:unsubscribe@brand.example?subject=unsubscribe%20msg_1>, <{UNSUB}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Siyu-Message-Id"] == "msg_1"
    assert str(message["Subject"]) == "双11 会员专享"
    assert "王女士" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<b>王女士</b>" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert isinstance(outcomes[0], Sent) and outcomes[0].provider_id == message["Message-ID"]


def test_bounces_logins_and_missing_unsubscribe_become_outcomes(smtp) -> None:
    sink, server = smtp
    gone, busy, no_link, notice = adapter(server.port).send(
        [
            email(1, "gone@example.com"),
            email(2, "busy@example.com"),
            email(3, "a@example.com", unsubscribe=False),
            email(4, "b@example.com", kind=MessageKind.TRANSACTIONAL, unsubscribe=False),
        ]
    )
    assert isinstance(gone, PermanentFailure) and gone.code == "smtp_550" and gone.suppress
    assert isinstance(busy, RetryableFailure) and busy.code == "smtp_451"
    assert isinstance(no_link, PermanentFailure) and no_link.code == "no_unsubscribe"
    assert isinstance(notice, Sent)  # a service notice needs no unsubscribe link
    assert [r.recipients for r in sink.received] == [["b@example.com"]]
    [refused] = adapter(server.port, password="wrong").send([email(5, "c@example.com")])
    assert isinstance(refused, PermanentFailure) and refused.code == "smtp_535"
    [down] = adapter(9).send([email(6, "c@example.com")])
    assert isinstance(down, RetryableFailure) and down.code == "smtp_connect"
