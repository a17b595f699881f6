"""The claim check on hand-made answers: numbers with units, identifiers, quoted strings."""

from __future__ import annotations

import pytest

from appliance.answering.claims import FLAG, Evidence, check_claims, shown_unflagged

PASSAGES = [
    "work_mem (integer)\nSets the base maximum amount of memory to be used by a query "
    "operation. The default value is four megabytes (4MB). Set it to -1 to use the system "
    "default.",
    "checkpoint_timeout (integer)\nMaximum time between automatic WAL checkpoints. The "
    "default is five minutes (5min). Run pg_dump --no-owner to leave out ownership. Edit "
    '/etc/postgresql/postgresql.conf; valid values are "try" and "off". Retries wait '
    "between 5-10 seconds.",
]
EVIDENCE = Evidence(PASSAGES, "What is the default of work_mem?")


def verdicts(answer: str) -> list[tuple[str, str, bool]]:
    return [(c.text, c.kind, c.supported) for c in check_claims(answer, EVIDENCE)]


@pytest.mark.parametrize(
    "answer",
    [
        "The default is 4MB [1].",
        "The default is 4 MB.",
        "It defaults to 4 megabytes.",
        "It defaults to 4096 kB.",  # the same quantity in another unit
        "Checkpoints happen every 5 minutes, that is 300 seconds.",
        "Set it to -1 to use the system default.",
        "Retries wait between 5 and 10 seconds.",
    ],
)
def test_a_right_number_is_supported(answer: str) -> None:
    found = verdicts(answer)
    assert found and all(supported for _, kind, supported in found if kind == "number"), found


def test_a_wrong_number_is_unsupported() -> None:
    assert verdicts("The default is 8MB.") == [("8MB", "number", False)]
    assert verdicts("Checkpoints happen every 15 minutes.") == [("15 minutes", "number", False)]


def test_a_number_stated_about_something_else_is_unsupported() -> None:
    evidence = Evidence(
        [
            "A VPN session expires after 11 hours, even when it is in use.",
            "Report a lost laptop to the service desk within one hour.",
        ],
        "How long does a VPN session last?",
    )
    assert [c.supported for c in check_claims("The answer is: 1 hour.", evidence)] == [False]
    assert [c.supported for c in check_claims("It lasts 11 hours [1].", evidence)] == [True]
    assert [c.supported for c in check_claims("Report it within 1 hour.", evidence)] == [True]


def test_a_right_number_with_a_wrong_unit_is_unsupported() -> None:
    assert verdicts("The default is 4 GB.") == [("4 GB", "number", False)]
    assert verdicts("Checkpoints happen every 5 hours.") == [("5 hours", "number", False)]


def test_an_invented_setting_name_is_unsupported_a_real_one_supported() -> None:
    assert verdicts("Raise max_sort_memory instead.") == [("max_sort_memory", "identifier", False)]
    assert verdicts("Raise work_mem instead.") == [("work_mem", "identifier", True)]
    # "mem" alone is not supported by work_mem: identifiers match whole words.
    assert verdicts("Raise `mem` instead.") == [("`mem`", "quote", False)]


def test_options_paths_and_quotes() -> None:
    assert verdicts("Use --no-owner.") == [("--no-owner", "identifier", True)]
    assert verdicts("Use --no-acl.") == [("--no-acl", "identifier", False)]
    assert verdicts("Edit /etc/postgresql/postgresql.conf.")[0][2] is True
    assert verdicts("Edit /etc/postgresql/main.conf.")[0][2] is False
    assert verdicts('Valid values are "try" and "maybe".') == [
        ('"try"', "quote", True),
        ('"maybe"', "quote", False),
    ]


def test_a_paraphrase_without_numbers_or_names_makes_no_claim() -> None:
    answer = "It limits how much memory a sort may use before spilling to disk [1]."
    assert verdicts(answer) == []
    # Citation markers, list numbering, prose abbreviations and plural acronyms are not claims.
    assert verdicts("1. Raise it, e.g. for big sorts [2].\n2. Check the APIs and URLs.") == []


def test_what_the_question_says_counts_as_given() -> None:
    evidence = Evidence(["Nothing relevant here."], "Is shared_buffers 128MB by default?")
    assert [c.supported for c in check_claims("shared_buffers is 128MB.", evidence)] == [
        True,
        True,
    ]


def test_shown_unflagged_counts_only_unmarked_unsupported_claims() -> None:
    marked = f"The default is 8MB{FLAG}, or 4MB [1]."
    assert shown_unflagged(marked, EVIDENCE) == []
    unmarked = "The default is 8MB, or 4MB [1]."
    assert [claim.text for claim in shown_unflagged(unmarked, EVIDENCE)] == ["8MB"]
