"""Release notes count less in the fusion unless the question asks what changed."""

from appliance.retrieval.hybrid import reciprocal_rank_fusion
from appliance.retrieval.release_notes import asks_about_change, is_release_notes


def test_release_notes_are_told_from_reference_pages_by_their_title() -> None:
    for title in (
        "What’s New In Python 3.11",
        "What's New in Python 2.4",
        "E.1. Release 15.5",
        "Release Notes",
        "Changelog",
        "Changes in 2.39",
    ):
        assert is_release_notes(title), title
    for title in (
        "multiprocessing — Process-based parallelism",
        "19.3. Connections and Authentication",
        "Renewing certificates",  # a word that starts like "new" is not "new"
        "Newsletters policy",
        None,
    ):
        assert not is_release_notes(title), title


def test_a_question_about_change_keeps_them_at_full_weight() -> None:
    assert asks_about_change("What changed in the default start method on macOS?")
    assert asks_about_change("Since which version does int() limit digits?")
    assert not asks_about_change("Which multiprocessing start method is used by default on macOS?")


def test_a_weight_below_one_moves_a_chunk_behind_ones_both_rankings_like_less() -> None:
    dense, lexical = ["notes", "reference", "other"], ["notes", "reference", "other"]
    assert reciprocal_rank_fusion([dense, lexical], 60)[0] == "notes"
    weighted = reciprocal_rank_fusion([dense, lexical], 60, {"notes": 0.8})
    assert weighted == ["reference", "other", "notes"]
    assert reciprocal_rank_fusion([dense, lexical], 60, {"absent": 0.5}) == [
        "notes",
        "reference",
        "other",
    ]
