"""Sensitive-word screening: one Aho–Corasick automaton over the workspace's list finds every
listed word in a text in a single pass, however long the list. Text is compared lower-cased
and with spaces and separators taken out, so "发 票" and "发-票" are caught as "发票"."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import ahocorasick

_SEPARATORS = re.compile(r"[\s\u3000\-_.·•*|/\\,，。!！?？~～]+")
_JOIN = "\x00"  # never in a word, and kept by normalise
_JOIN_AT = re.compile(_JOIN)


def normalise(text: str) -> str:
    return _SEPARATORS.sub("", text.lower())


@dataclass(frozen=True)
class Hit:
    word: str
    start: int  # in the normalised text


class WordList:
    def __init__(self, words: list[str]) -> None:
        self.words = sorted({w for w in (normalise(w).replace(_JOIN, "") for w in words) if w})
        self._automaton = ahocorasick.Automaton()
        for word in self.words:
            self._automaton.add_word(word, word)
        if self.words:
            self._automaton.make_automaton()

    def find(self, text: str) -> list[Hit]:
        if not self.words:
            return []
        return [Hit(word, end - len(word) + 1) for end, word in self._automaton.iter(normalise(text))]

    def find_many(self, texts: Sequence[str]) -> dict[int, set[str]]:
        """The words in each of many texts (by position; texts without any are left out), in one
        pass over them all joined: a separator no word holds keeps a word from spanning two."""
        if not self.words or not texts:
            return {}
        joined = _JOIN.join(texts)
        if joined.count(_JOIN) >= len(texts):  # a text holds the separator: take it out first
            joined = _JOIN.join(t.replace(_JOIN, "") for t in texts)
        joined = normalise(joined)
        hits = list(self._automaton.iter(joined))
        if not hits:
            return {}
        ends = [m.start() for m in _JOIN_AT.finditer(joined)]
        out: dict[int, set[str]] = {}
        for end, word in hits:
            out.setdefault(bisect_left(ends, end), set()).add(word)
        return out

    def __len__(self) -> int:
        return len(self.words)


def parse_words(text: str) -> list[str]:
    """One word per line (or comma separated); # starts a comment."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        out += [w.strip() for w in re.split(r"[,，]", line) if w.strip()]
    return out


@lru_cache(maxsize=1)
def default_words() -> tuple[str, ...]:
    text = resources.files("siyu.channels").joinpath("data/sensitive_words.txt").read_text(encoding="utf-8")
    return tuple(parse_words(text))


@lru_cache(maxsize=32)
def word_list(extra: str) -> WordList:
    """The default list plus a workspace's own words (cached by their text)."""
    return WordList([*default_words(), *parse_words(extra)])
