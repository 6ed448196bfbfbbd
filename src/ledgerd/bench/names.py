"""The benchmark scenarios, by name (kept apart so the CLI can list them cheaply)."""

SCENARIOS = [
    "echo",
    "change-single",
    "change-batch",
    "apply",
    "hot",
    "read",
    "baseline-sql",
    "memory",
]
