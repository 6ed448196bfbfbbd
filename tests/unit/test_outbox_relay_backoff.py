"""The relay's retry backoff for FAILED publishes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.outbox.relay import retry_delay_ms


@pytest.mark.parametrize(("attempts", "delay_ms"), [(1, 100), (2, 200), (3, 400), (4, 800)])
def test_delay_doubles_with_each_attempt(attempts: int, delay_ms: int) -> None:
    """The delay is base, 2*base, 4*base ... as attempts grow."""
    assert retry_delay_ms(attempts, base_ms=100, max_ms=30_000) == delay_ms


def test_delay_before_any_attempt_is_the_base() -> None:
    """With no attempt recorded yet, the delay is the base delay."""
    assert retry_delay_ms(0, base_ms=100, max_ms=30_000) == 100


@pytest.mark.parametrize("attempts", [10, 31, 1000])
def test_delay_is_capped_at_the_maximum(attempts: int) -> None:
    """However many attempts, the delay never exceeds max_ms."""
    assert retry_delay_ms(attempts, base_ms=100, max_ms=30_000) == 30_000


@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=10**7),
)
def test_delay_is_monotonic_and_bounded(attempts: int, base_ms: int, max_ms: int) -> None:
    """One more attempt never shortens the delay, and the delay stays within max_ms."""
    delay = retry_delay_ms(attempts, base_ms, max_ms)
    assert delay <= max_ms
    assert retry_delay_ms(attempts + 1, base_ms, max_ms) >= delay
