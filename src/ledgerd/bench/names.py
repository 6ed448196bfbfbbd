"""The benchmark scenarios, by name (kept apart so the CLI can list them cheaply)."""

SCENARIOS = [
    "echo",
    "change-single",
    "change-batch",
    "apply",
    "apply-large",
    "hot",
    "read",
    "baseline-sql",
    "memory",
    "transfer",
    "events",
    "hold",
]

# Scenarios bound by the API's per-call cost: measured with each count of API worker
# processes asked for (LEDGERD_API_WORKERS); the others run the server's default.
WORKER_SCENARIOS = ["change-single", "read"]
DEFAULT_WORKERS = [1, 2]
# Scenarios whose throughput the markdown report also gives as a ratio to echo's.
ECHO_COMPARED = [*WORKER_SCENARIOS, "transfer"]


def run_label(scenario: str, workers: int | None) -> str:
    """A result row's name: the scenario, with its API workers where those vary."""
    if scenario not in WORKER_SCENARIOS or not workers:
        return scenario
    return f"{scenario} ({workers} worker{'s' * (workers > 1)})"
