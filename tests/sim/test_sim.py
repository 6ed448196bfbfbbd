"""The seeded simulation of the read path and the consumer (``tests.sim``).

``LEDGERD_SIM_SEEDS=N`` sets how many seeds the sweep runs (``LEDGERD_SIM_FIRST_SEED``
where it starts); ``LEDGERD_SIM_SEED=1234 pytest tests/sim -k replay`` replays one
seed and prints its schedule; so does
``PYTHONPATH=src:tests python -m sim.run --seed 1234 --trace``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from random import Random

import pytest

from ledgerd.store.base import LockToken
from ledgerd.store.sqlite import SqliteStore
from sim.kernel import Sim
from sim.run import config_for, describe
from sim.store import SimStore
from sim.world import Result, run_seed

# About 30-60 s on the 2-core CI machine (60-110 ms a seed, depending on its load).
DEFAULT_SEEDS = 500
SEEDS = int(os.environ.get("LEDGERD_SIM_SEEDS", DEFAULT_SEEDS))
FIRST_SEED = int(os.environ.get("LEDGERD_SIM_FIRST_SEED", "1"))
# How far the switch tests look for the first failing seed of an old mechanism.
SWITCH_SEARCH_SEEDS = 300


def _failures(switch: str, seeds: range) -> list[Result]:
    config = config_for(switch)
    return [r for r in (run_seed(seed, config) for seed in seeds) if not r.ok]


def _first_failure(switch: str) -> Result | None:
    config = config_for(switch)
    for seed in range(1, SWITCH_SEARCH_SEEDS + 1):
        result = run_seed(seed, config)
        if not result.ok:
            return result
    return None


def test_reads_never_go_back_in_time_and_changes_apply_once_over_many_seeds() -> None:
    """Today's design: no seed breaks the read invariant or exactly-once apply."""
    failed = _failures("none", range(FIRST_SEED, FIRST_SEED + SEEDS))
    assert not failed, "\n".join(
        [f"replay: LEDGERD_SIM_SEED={r.seed} pytest tests/sim -k replay" for r in failed[:5]]
        + [describe(r) for r in failed[:5]]
    )


@pytest.mark.parametrize("switch", ["r1", "r2", "r4"])
def test_the_checker_finds_each_old_mechanism(switch: str) -> None:
    """With an old mechanism back (``sim.old``), a seed fails the read invariant."""
    result = _first_failure(switch)
    assert result is not None, f"{switch}: no failure in {SWITCH_SEARCH_SEEDS} seeds"
    assert result.crash is None
    assert any("read" in v and "was answered before it began" in v for v in result.violations)
    print(f"{switch}: first failing seed {result.seed}\n{describe(result)}")


def test_the_r2_control_without_the_early_emptying_passes() -> None:
    """The R2 scenario with a buffer kept until its replay lands passes: the emptying is
    what the checker finds, not the scenario."""
    assert not _failures("r2-control", range(1, 101))


def test_a_seed_replays_exactly() -> None:
    """Two runs of one seed give the same schedule and the same answers."""
    config = config_for("r1")
    first, second = run_seed(2, config), run_seed(2, config)
    assert first.trace == second.trace
    assert first.violations == second.violations
    assert first.digest() != run_seed(3, config).digest()


def test_replay() -> None:
    """Replays LEDGERD_SIM_SEED (default 1; LEDGERD_SIM_SWITCH picks an old mechanism,
    default none), printing its schedule: the seed passes."""
    result = run_seed(
        int(os.environ.get("LEDGERD_SIM_SEED", "1")),
        config_for(os.environ.get("LEDGERD_SIM_SWITCH", "none")),
    )
    print("\n".join(result.trace))
    assert result.ok, describe(result)


def test_store_model_fences_like_sqlite() -> None:
    """The store model's leader-lock and fence statements answer as ``SqliteStore``'s, over
    a random sequence of calls at random times."""
    sim = Sim()
    model = SimStore(sim, Random(0))
    model._call = lambda statement, **_: statement()  # type: ignore[method-assign]
    rng = Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(Path(tmp) / "ledger.db", clock_ms=lambda: int(sim.now * 1000))
        sqlite.migrate()
        tokens: dict[str, LockToken] = {}
        for _ in range(400):
            sim.now += rng.uniform(0.0, 2.0)
            op = rng.choice(["raise", "generation", "grant", "acquire", "renew"])
            if op == "raise":
                got = (sqlite.raise_fence("f"), model.raise_fence("f"))
            elif op == "generation":
                got = (sqlite.fence_generation("f"), model.fence_generation("f"))
            elif op == "grant":
                generation = model.fence_generation("f") - rng.randint(0, 1)
                ttl_ms = rng.randint(500, 3000)
                got = (
                    sqlite.grant_lease("f", generation, ttl_ms),
                    model.grant_lease("f", generation, ttl_ms),
                )
            elif op == "acquire":
                owner = rng.choice("ab")
                got = (sqlite.acquire_lock("l", owner, 3000), model.acquire_lock("l", owner, 3000))
                if got[0] is not None:
                    tokens[owner] = LockToken("l", owner, got[0])
            else:
                token = tokens.get(rng.choice("ab"))
                if token is None:
                    continue
                got = (sqlite.renew_lock(token, 3000), model.renew_lock(token, 3000))
            assert got[0] == got[1], (op, got)
        sqlite.close()
