"""Plain-text layout the parser folded into one line must not glue a heading to its body."""

from appliance.answering.extractive import layout_lines


def test_an_underlined_heading_is_its_own_line() -> None:
    raw = (
        "Remote access ============ Scope ----- This policy applies to all staff. "
        "It is reviewed yearly. Session limits -------------- A VPN session expires after "
        "11 hours."
    )
    assert layout_lines(raw) == [
        "Remote access",
        "Scope",
        "This policy applies to all staff. It is reviewed yearly.",
        "Session limits",
        "A VPN session expires after 11 hours.",
    ]


def test_operators_and_short_dashes_are_words() -> None:
    assert layout_lines("x = 1 and y == 2 -- see  below") == ["x = 1 and y == 2 -- see below"]


def test_a_quote_label_drops_its_section_number() -> None:
    """'13.5. Serialization Failure Handling' over a quote read as a claim of 13.5 that the
    sentence does not make (bench/answers.py found it on the PostgreSQL manual)."""
    from appliance.answering.extractive import candidates
    from appliance.domain import Hit

    text = "13.5. Serialization Failure Handling\nIt will always have the SQLSTATE code 40001."
    hit = Hit("c", "d", "v", "/docs/mvcc.html", None, None, 0.9, text)
    [found] = candidates([hit])
    assert found.label == "Serialization Failure Handling"
