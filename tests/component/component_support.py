"""The rig of the component tests: embedded store and log, with helpers."""

from __future__ import annotations

from dataclasses import dataclass

from ledgerd.cache.memory import MemoryCache
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig, SendOn
from ledgerd.domain.model import ChangeRequest
from ledgerd.log.embedded import EmbeddedLog
from ledgerd.log.signing import MessageSigner
from ledgerd.outbox.relay import Relay
from ledgerd.store.sqlite import SqliteStore

TOPIC, DLQ = "balance-changes", "balance-changes-dlq"


@dataclass
class Rig:
    store: SqliteStore
    log: EmbeddedLog
    cache: MemoryCache

    def accept(self, requests: list[ChangeRequest], now_ms: int = 1000) -> None:
        self.store.accept_requests(
            [r.request_id for r in requests],
            lambda stored: [r for r in requests if r.request_id not in stored],
            now_ms,
        )

    @property
    def signer(self) -> MessageSigner:
        return MessageSigner(self.store.message_key())

    def relay(self, **options: object) -> Relay:
        return Relay(
            self.store,
            self.log.producer(),
            self.signer,
            topic=TOPIC,
            partition_count=3,
            **options,  # type: ignore[arg-type]
        )

    def consumer(self, send_on: SendOn | None = None, **options: object) -> BatchConsumer:
        config = ConsumerConfig(topic=TOPIC, dlq_topic=DLQ, poll_timeout_s=0.1, **options)  # type: ignore[arg-type]
        return BatchConsumer(
            self.store, self.log, self.cache, None, config, signer=self.signer, send_on=send_on
        )
