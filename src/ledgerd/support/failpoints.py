"""Named failpoints for fault drills (in the spirit of etcd's gofail and TiKV's fail-rs).

Code marks a place with ``failpoints.hit("consumer.before_commit")``. Nothing
happens unless that name is configured, once per process, from the setting
``LEDGERD_FAILPOINTS``: ``name=action`` pairs separated by ``;``, where an
action is ``sleep(MS)``, ``error`` (raise ``FailpointError``), ``exit`` (end the
process at once, like a crash) or ``off``; ``N*`` before an action fires it at
most N times, e.g. ``consumer.before_commit=sleep(100);relay.after_produce=1*error``.
Every firing logs the failpoint's name. While no failpoint is configured, a
``hit`` costs one dictionary truth test.

The places, by name:
    consumer.before_commit   the consumer holds a decided batch, not yet committed
    consumer.after_commit    the batch is committed; memory, cache and waiters not yet told
    acceptor.before_commit   a group of requests is about to be committed to the outbox
    relay.after_produce      a batch was handed to the log producer; delivery not yet recorded
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

KNOWN = frozenset(
    {
        "consumer.before_commit",
        "consumer.after_commit",
        "acceptor.before_commit",
        "relay.after_produce",
        # Used by the supervision tests: one round of each component's loop.
        "acceptor.loop",
        "relay.loop",
        "consumer.loop",
        "cache_updater.loop",
        "leader.loop",
        "periodic.loop",
    }
)

_ACTION = re.compile(r"^(?:(?P<count>\d+)\*)?(?P<kind>sleep|error|exit|off)(?:\((?P<arg>\d+)\))?$")


class FailpointError(RuntimeError):
    """Raised where a failpoint with the ``error`` action fires."""


@dataclass(slots=True)
class _Action:
    kind: str
    sleep_ms: int
    remaining: int | None  # None: unlimited


_active: dict[str, _Action] = {}
_lock = threading.Lock()


def configure(spec: str) -> None:
    """Replace the configured failpoints with those of ``spec`` (empty: none).

    Raises:
        ValueError: an unknown name or a malformed action; the message names it.
    """
    parsed: dict[str, _Action] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, sep, action = item.partition("=")
        name, action = name.strip(), action.strip()
        if not sep or name not in KNOWN:
            raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(sorted(KNOWN))}")
        match = _ACTION.match(action)
        if match is None or (match["kind"] == "sleep") != (match["arg"] is not None):
            raise ValueError(
                f"failpoint {name}: bad action {action!r}; use sleep(MS), error, exit or off"
            )
        if match["kind"] != "off":
            count = match["count"]
            parsed[name] = _Action(
                match["kind"], int(match["arg"] or 0), int(count) if count else None
            )
    with _lock:
        _active.clear()
        _active.update(parsed)


def hit(name: str, note: str = "", **context: object) -> None:
    """Fire the failpoint ``name`` if it is configured (logs its name, and ``note``, first).

    Raises:
        FailpointError: its action is ``error``.
    """
    if not _active:
        return
    with _lock:
        action = _active.get(name)
        if action is None:
            return
        if action.remaining is not None:
            action.remaining -= 1
            if action.remaining <= 0:
                del _active[name]
    event = f"fault injection: {note}" if note else "fault injection: failpoint fired"
    log.warning(event, failpoint=name, action=action.kind, **context)
    if action.kind == "sleep":
        time.sleep(action.sleep_ms / 1000)
    elif action.kind == "error":
        raise FailpointError(f"failpoint {name}")
    elif action.kind == "exit":
        os._exit(70)


def active() -> dict[str, str]:
    """The configured failpoints and their actions (for logs and health)."""
    with _lock:
        return {name: action.kind for name, action in _active.items()}
