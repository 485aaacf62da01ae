"""The SMS composer's checks: the 【signature】, length and parts as billed (70, then 67 a part),
the opt-out a marketing SMS must end with, provider rules, links, and sensitive words. Errors
stop a template from being saved or sent; warnings are shown."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from siyu.channels.sms import DEFAULT_OPT_OUT, MAX_LENGTH, has_opt_out, sms_length, sms_parts, with_signature
from siyu.channels.words import WordList

# Links in an SMS are counted at the length they go out with: a short link.
SHORT_LINK_LENGTH = 24
_LINK = re.compile(r"https?://[^\s，。]+")
_TENCENT_FORBIDDEN = re.compile(r"[【】¥★]")


@dataclass(frozen=True)
class Finding:
    code: str
    level: str  # error | warning
    message: str


@dataclass(frozen=True)
class SmsCheck:
    text: str  # with the signature, links as given
    length: int  # as billed: links counted short
    parts: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)


def check_sms(
    body: str, *, signature: str, marketing: bool, provider: str, words: WordList, shorten_links: bool = True
) -> SmsCheck:
    """Check one rendered SMS body (without its signature)."""
    text = with_signature(signature, body)
    billed = _LINK.sub("x" * SHORT_LINK_LENGTH, text) if shorten_links else text
    length = sms_length(billed)
    findings: list[Finding] = []
    if not signature:
        findings.append(Finding("no_signature", "error", "an SMS needs its 【signature】 (set it on the SMS account)"))
    if re.search(r"^【[^】]*】", body):
        findings.append(
            Finding("signature_in_body", "error", "the signature is added for you: take 【…】 out of the text")
        )
    if length > MAX_LENGTH:
        findings.append(Finding("too_long", "error", f"{length} characters: an SMS holds at most {MAX_LENGTH}"))
    if marketing and not has_opt_out(text):
        findings.append(
            Finding("no_opt_out", "error", f"a marketing SMS must say how to refuse: end it with {DEFAULT_OPT_OUT}")
        )
    if marketing and has_opt_out(text) and not text.rstrip().endswith(DEFAULT_OPT_OUT) and provider == "aliyun_sms":
        findings.append(Finding("opt_out_not_last", "error", f"Aliyun requires {DEFAULT_OPT_OUT} at the very end"))
    if not marketing and has_opt_out(text):
        findings.append(
            Finding("opt_out_in_notice", "warning", "a notification with an opt-out reads as marketing to reviewers")
        )
    if provider == "tencent_sms" and _TENCENT_FORBIDDEN.search(body):
        findings.append(Finding("tencent_symbols", "error", "Tencent templates may not contain 【】, ¥ or ★"))
    for hit in sorted({h.word for h in words.find(body)}):
        findings.append(Finding("sensitive_word", "error", f"contains the sensitive word {hit!r}"))
    parts = sms_parts(length)
    if parts > 1:
        findings.append(Finding("long_sms", "warning", f"{length} characters go out as {parts} billed parts"))
    return SmsCheck(text=text, length=length, parts=parts, findings=tuple(findings))


def refusal(body: str, *, signature: str, words: WordList) -> str:
    """Why one person's rendered SMS cannot go — over the length limit, or a sensitive word —
    or "" when it can: the part of the checks that depends on the person, made for sending in
    bulk (the rest was checked when the template was saved)."""
    text = with_signature(signature, body)
    length = sms_length(_LINK.sub("x" * SHORT_LINK_LENGTH, text) if "://" in text else text)
    problems = [f"{length} characters: an SMS holds at most {MAX_LENGTH}"] if length > MAX_LENGTH else []
    problems += [f"contains the sensitive word {w!r}" for w in sorted({h.word for h in words.find(body)})]
    return "; ".join(problems)


def refusals(bodies: Sequence[str], *, signature: str, words: WordList) -> list[str]:
    """``refusal`` for many people's messages at once: the words screened in one pass."""
    found = words.find_many(bodies)
    extra = len(with_signature(signature, ""))
    room = MAX_LENGTH - extra  # a body without links and no longer than this is never too long
    out = [""] * len(bodies)
    for n in sorted({n for n, body in enumerate(bodies) if len(body) > room or "://" in body} | found.keys()):
        body = bodies[n]
        length = sms_length(_LINK.sub("x" * SHORT_LINK_LENGTH, body) if "://" in body else body) + extra
        problems = [f"{length} characters: an SMS holds at most {MAX_LENGTH}"] if length > MAX_LENGTH else []
        if n in found:
            problems += [f"contains the sensitive word {w!r}" for w in sorted(found[n])]
        out[n] = "; ".join(problems)
    return out
