"""Tells when a model has started repeating itself, so its generation can be stopped.

A small model at low temperature falls into loops: the same sentence again, or the same few
words over and over until max_tokens. vLLM's penalties make that rarer, not impossible, so the
answer service stops reading the stream at the first repeat: the asker gets the answer so far
instead of a screen of repetition.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?\n]")
_WORD = re.compile(r"\w+")
# A sentence shorter than this ("Yes." twice) is not a loop.
_MIN_SENTENCE_CHARS = 24
# The same run of this many words three times is a loop even without sentence ends.
_RUN_WORDS = 6


def is_looping(text: str) -> bool:
    """Whether the latest sentence repeats an earlier one, or the last words loop."""
    # What follows the last sentence end is not finished yet.
    sentences = [" ".join(part.split()).casefold() for part in _SENTENCE_END.split(text)[:-1]]
    if sentences:
        latest = sentences[-1]
        if len(latest) >= _MIN_SENTENCE_CHARS and latest in sentences[:-1]:
            return True
    words = [word.casefold() for word in _WORD.findall(text)]
    if len(words) < 3 * _RUN_WORDS:
        return False
    run = words[-_RUN_WORDS:]
    seen = 0
    for start in range(len(words) - _RUN_WORDS + 1):
        if words[start] == run[0] and words[start : start + _RUN_WORDS] == run:
            seen += 1
    return seen >= 3
