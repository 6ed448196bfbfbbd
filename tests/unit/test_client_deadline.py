"""The client's overall deadline: it cuts each attempt's timeout and stops the retries."""

from __future__ import annotations

from ledgerd.client import CallDeadline


def test_without_a_deadline_attempts_keep_their_timeout_and_may_always_retry() -> None:
    """deadline_s=None: the per-attempt timeout alone bounds a call, as before."""
    deadline = CallDeadline.after(None, now=100.0)
    assert deadline.attempt_timeout_s(10.0, now=1e9) == 10.0
    assert deadline.allows_retry(2.0, now=1e9)


def test_an_attempt_gets_at_most_what_is_left() -> None:
    """A 3 s deadline: the first attempt may use all 3 s of a 15 s timeout; later, the rest."""
    deadline = CallDeadline.after(3.0, now=100.0)
    assert deadline.attempt_timeout_s(15.0, now=100.0) == 3.0
    assert deadline.attempt_timeout_s(15.0, now=102.5) == 0.5
    assert deadline.attempt_timeout_s(1.0, now=100.0) == 1.0
    assert deadline.attempt_timeout_s(15.0, now=104.0) == 0.0


def test_no_retry_once_the_backoff_would_reach_the_deadline() -> None:
    """After an attempt used the whole budget, or when the backoff would end past it, stop."""
    deadline = CallDeadline.after(3.0, now=100.0)
    assert deadline.allows_retry(0.1, now=101.0)
    assert not deadline.allows_retry(0.1, now=103.0)
    assert not deadline.allows_retry(0.4, now=102.7)
