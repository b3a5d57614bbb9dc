from hearth.engine.generation.stop_strings import StopMatcher


def feed(matcher: StopMatcher, pieces: list[str]) -> str:
    out = "".join(matcher.push(p) for p in pieces)
    return out + matcher.flush()


def test_no_stops_passes_everything_through():
    assert feed(StopMatcher(()), ["a", "b"]) == "ab"


def test_stop_split_across_pieces_is_cut():
    matcher = StopMatcher(("\nUser:",))
    assert feed(matcher, ["Hello", "\nUs", "er:", " more"]) == "Hello"
    assert matcher.stopped


def test_partial_match_that_fails_is_released():
    matcher = StopMatcher(("STOP",))
    assert matcher.push("ab ST") == "ab "
    assert matcher.push("ART") == "START"
    assert matcher.flush() == ""
    assert not matcher.stopped


def test_earliest_of_several_stops_wins():
    assert feed(StopMatcher(("c", "b")), ["abcd"]) == "a"


def test_held_text_is_flushed_at_the_end():
    assert feed(StopMatcher(("xyz",)), ["abc x"]) == "abc x"


def test_the_matched_stop_string_is_the_one_that_appears_first():
    matcher = StopMatcher(("world", "lo w", "xyz"))
    out = matcher.push("hel") + matcher.push("lo wor") + matcher.push("ld")
    assert out == "hel" and matcher.stopped and matcher.matched == "lo w"
    unmatched = StopMatcher(("xyz",))
    unmatched.push("abc")
    assert not unmatched.stopped and unmatched.matched == ""
