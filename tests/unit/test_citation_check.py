"""The citation check: a cited source must share the citing sentence's words (stemmed)."""

from __future__ import annotations

from appliance.answering.citation_check import (
    check_citations,
    content_words,
    drop_unsupported,
    sentence_spans,
)

SOURCES = {
    1: "The build cache lives in /var/cache/forge and is shared by every build agent.",
    2: "Expense reports are approved by the team lead within five working days.",
}


def test_a_sentence_taken_from_its_source_is_supported() -> None:
    answer = "The build cache is shared by every build agent [1]."
    support = check_citations(answer, SOURCES, 0.5)
    assert support[1].supported is True
    assert support[1].overlap == 1.0


def test_a_citation_pointing_at_an_unrelated_source_is_flagged() -> None:
    answer = "The build cache is shared by every build agent [2]."
    support = check_citations(answer, SOURCES, 0.5)
    assert support[2].supported is False
    assert support[2].overlap < 0.2


def test_each_sentence_is_judged_against_its_own_citations() -> None:
    answer = (
        "Expense reports are approved by the team lead [2]. "
        "Reports need a signature from finance [2]. The cache is shared [1]."
    )
    support = check_citations(answer, SOURCES, 0.5)
    # "The cache is shared" has 2 content words: too few to judge, so it counts as supported.
    assert support[1].supported is True
    assert support[2].supported is False  # the second sentence shares only "reports" with [2]
    assert 0.0 < support[2].overlap < 0.5


def test_stemming_lets_inflections_match() -> None:
    assert content_words("Reports approved") == content_words("report approves")


def test_sources_that_are_not_cited_get_no_verdict() -> None:
    assert check_citations("No citation here at all, really.", SOURCES, 0.5) == {}
    assert 7 not in check_citations("A claim about build agents sharing caches [7].", SOURCES, 0.5)


def test_drop_removes_only_the_unsupported_markers() -> None:
    answer = (
        "Expense reports are approved by the team lead [2][1].\n"
        "The build cache is shared by every build agent [1]."
    )
    kept = drop_unsupported(answer, SOURCES, 0.5)
    assert kept == (
        "Expense reports are approved by the team lead [2].\n"
        "The build cache is shared by every build agent [1]."
    )


def test_sentences_split_on_ends_and_line_breaks() -> None:
    text = "First one [1]. Second one! Third?\n- a list item [2]\nNo end"
    assert [text[begin:end] for begin, end in sentence_spans(text)] == [
        "First one [1].",
        "Second one!",
        "Third?",
        "- a list item [2]",
        "No end",
    ]
