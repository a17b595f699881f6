"""The streaming claim guard: nothing unsupported reaches a reader unmarked, and text that
makes no claim is not held back."""

from __future__ import annotations

import re

from appliance.answering.claim_guard import ClaimGuard
from appliance.answering.claims import FLAG, Evidence
from appliance.answering.repetition import is_looping

PASSAGES = ["work_mem (integer)\nThe default value is four megabytes (4MB). Use --no-owner."]
ANSWER = "The default of `work_mem` is 4 MB [1]. Some say 8 MB, or use --no-acl.\n1. Done"


def stream(action: str, text: str = ANSWER) -> tuple[list[str], ClaimGuard]:
    guard = ClaimGuard(Evidence(PASSAGES, "default work_mem?"), action)  # type: ignore[arg-type]
    pieces = [guard.feed(token) for token in re.findall(r"\S+|\s+", text)]
    pieces.append(guard.finish())
    return pieces, guard


def test_flag_marks_each_unsupported_claim_right_after_it() -> None:
    pieces, guard = stream("flag")
    assert "".join(pieces) == (
        f"The default of `work_mem` is 4 MB [1]. Some say 8 MB{FLAG}, or use --no-acl{FLAG}."
        "\n1. Done"
    )
    assert [claim.text for claim in guard.unsupported] == ["8 MB", "--no-acl"]
    assert guard.stopped is None


def test_replace_releases_nothing_from_the_first_unsupported_claim_on() -> None:
    pieces, guard = stream("replace")
    shown = "".join(pieces)
    assert shown.startswith("The default of `work_mem` is 4 MB [1]. Some say")
    assert "8" not in shown.split("[1]")[1] and "--no-acl" not in shown
    assert guard.stopped is not None and guard.stopped.text == "8 MB"


def test_off_shows_everything_and_still_records_the_claims() -> None:
    pieces, guard = stream("off")
    assert "".join(pieces) == ANSWER
    assert [claim.text for claim in guard.unsupported] == ["8 MB", "--no-acl"]


def test_words_are_released_as_they_complete_and_a_number_waits_for_its_unit() -> None:
    guard = ClaimGuard(Evidence(PASSAGES), "flag")
    assert guard.feed("The") == ""  # still being written
    assert guard.feed(" default") == "The "
    assert guard.feed(" is 8") == "default is "
    assert guard.feed(" MB") == ""  # "8" waits: its unit decides the claim
    assert guard.feed(" today.") == f"8 MB{FLAG} "
    assert guard.finish() == "today."


def test_an_open_code_span_is_held_until_it_closes() -> None:
    guard = ClaimGuard(Evidence(PASSAGES), "flag")
    assert guard.feed("Run `pg_dump ") == "Run "
    assert guard.feed("--no-acl` now ") == f"`pg_dump --no-acl`{FLAG} now "


def test_a_loop_is_noticed_a_varied_answer_is_not() -> None:
    assert is_looping("The default is 4MB for each sort. It is per operation. "
                      "The default is 4MB for each sort.")  # fmt: skip
    assert is_looping("memory for the memory for the " * 3)
    assert not is_looping("The default is 4MB. It is used for each sort. Raise it for big joins.")
