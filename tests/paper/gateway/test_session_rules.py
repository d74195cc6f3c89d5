"""Version negotiation and pacing rules, as pure functions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.tws import session
from paper.tws.outgoing import MIN_CLIENT_VERSION, SERVER_VERSION


@settings(deadline=None)  # a shared CI machine must not fail on a slow example
@given(st.integers(0, 300), st.integers(0, 300), st.sampled_from(["", " +PACEAPI", " x y"]))
def test_negotiated_version_is_never_above_the_clients_maximum(low: int, high: int, options: str) -> None:
    version = session.negotiate([f"v{low}..{high}{options}"])
    if version is None:
        assert min(high, SERVER_VERSION) < max(low, MIN_CLIENT_VERSION)
    else:
        assert version <= high and version <= SERVER_VERSION
        assert version >= max(low, MIN_CLIENT_VERSION)
        assert version == min(high, SERVER_VERSION)


def test_unparsable_hello_is_refused() -> None:
    assert session.negotiate(["hello"]) is None
    assert session.negotiate(["v157..178", "extra"]) is None
    assert session.negotiate(["v..178"]) is None


@settings(deadline=None)  # a shared CI machine must not fail on a slow example
@given(st.lists(st.floats(0, 0.2), min_size=1, max_size=300))
def test_pacer_never_lets_more_than_the_limit_plus_the_refill(gaps: list[float]) -> None:
    clock = [0.0]
    pacer = session.Pacer(limit=50, clock=lambda: clock[0])
    allowed = 0
    for gap in gaps:
        clock[0] += gap
        allowed += pacer.allow()
    assert allowed <= 50 + 50 * clock[0] + 1e-9
    # A burst right after a second of silence is always allowed up to the limit.
    clock[0] += 1.0
    assert all(pacer.allow() for _ in range(50))
    assert not pacer.allow()
