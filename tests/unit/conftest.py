"""Unit test settings."""

from hypothesis import settings

# The properties check values, not speed: hypothesis's default 200 ms deadline per example
# failed under CPU contention (a busy 2-core machine), which says nothing about the code.
settings.register_profile("ledgerd", deadline=None)
settings.load_profile("ledgerd")
