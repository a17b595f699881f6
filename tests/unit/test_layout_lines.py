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
