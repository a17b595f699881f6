"""Checks a streamed answer's claims before the asker reads them.

Text is released as it arrives, except the word that is still being written, a number whose
unit may be the next word, and an open quote: those wait until the claim they may be part of is
complete and checked. So a first token is not delayed (unless the answer opens with a number),
and no unsupported number or identifier reaches a reader unmarked:
- `flag`: it is released with a marker right after it;
- `replace`: nothing from it on is released; the answer service stops the model and answers
  with the extractive answer instead, saying why;
- `off`: text is released as it comes, and the claims are still recorded for the audit.
"""

from __future__ import annotations

import re
from typing import Literal

from appliance.answering.citation_check import sentence_spans
from appliance.answering.claims import FLAG, NUMBER_WORDS, Claim, Evidence, check_claims

ClaimAction = Literal["flag", "replace", "off"]
_NUMBER_WORD = re.compile(r"^[-(]?\d[\d.,]*$")
_LIST_START = re.compile(r"\s*\d+[.)]\s")


class ClaimGuard:
    def __init__(self, evidence: Evidence, action: ClaimAction) -> None:
        self._evidence = evidence
        self._action = action
        self._text = ""  # everything the model wrote
        self._released = 0  # how much of it was checked and let through
        self.claims: list[Claim] = []
        # replace: the first unsupported claim, where the answer stops
        self.stopped: Claim | None = None

    @property
    def model_text(self) -> str:
        return self._text

    @property
    def unsupported(self) -> list[Claim]:
        return [claim for claim in self.claims if not claim.supported]

    def feed(self, delta: str) -> str:
        """Add what the model wrote; returns the text now safe to show (possibly empty)."""
        if self.stopped is not None:
            return ""
        self._text += delta
        return self._release(self._settled())

    def finish(self) -> str:
        """The model is done: check and return whatever was held back."""
        if self.stopped is not None:
            return ""
        return self._release(len(self._text))

    def _settled(self) -> int:
        """Where the text can be checked up to: before any claim that may still grow."""
        text = self._text
        end = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
        if end <= self._released:
            return self._released
        line_start = text.rfind("\n", 0, end) + 1
        line = text[line_start:end]
        # An open quote or code span: its claim is not complete yet.
        for opener, closer in (("`", "`"), ('"', '"'), ("“", "”")):
            if opener == closer:
                still_open = line.count(opener) % 2 == 1
            else:
                still_open = line.count(opener) > line.count(closer)
            if still_open:
                end = min(end, line_start + line.rfind(opener))
        # A number at the end may be followed by its unit ("128" then " MB").
        words = text[self._released : end].split()
        if words:
            last = words[-1].strip("*")
            if _NUMBER_WORD.match(last) or last.lower() in NUMBER_WORDS:
                end = text.rfind(words[-1], self._released, end)
        return max(end, self._released)

    def _sentence_start(self) -> int:
        """Where the sentence holding the first unreleased character starts (at most its
        line's start: a list's "1." is only one at the start of a line)."""
        line_start = self._text.rfind("\n", 0, self._released) + 1
        spans = sentence_spans(self._text[line_start : self._released])
        if not spans:
            return line_start
        start = line_start + spans[-1][0]
        return line_start if _LIST_START.match(self._text, start) else start

    def _release(self, end: int) -> str:
        if end <= self._released:
            return ""
        # Claims are found from the start of the sentence being released: a number's claim is
        # read within its sentence, so nothing earlier changes it, and re-reading the whole
        # line on every token made the check quadratic in a long paragraph (bench/answers.py).
        line_start = self._sentence_start()
        segment = self._text[line_start:end]
        offset = self._released - line_start
        pieces: list[str] = []
        position = offset
        for claim in check_claims(segment, self._evidence):
            if claim.start < offset:
                continue
            placed = Claim(
                claim.text,
                claim.kind,
                claim.start + line_start,
                claim.end + line_start,
                claim.supported,
            )
            self.claims.append(placed)
            if claim.supported or self._action == "off":
                continue
            if self._action == "replace":
                pieces.append(segment[position : claim.start])
                self.stopped = placed
                self._released = end
                return "".join(pieces).rstrip()
            pieces.append(segment[position : claim.end] + FLAG)
            position = claim.end
        pieces.append(segment[position:])
        self._released = end
        return "".join(pieces)
