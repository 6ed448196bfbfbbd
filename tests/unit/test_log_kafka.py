"""The Kafka log's own logic, librdkafka faked: watermark reads wait out a leader election,
a producer that failed fatally is replaced once its queue is empty, and publishing makes
no objects per record that a run of records can share."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from structlog.testing import capture_logs

from ledgerd.errors import LogUnavailable
from ledgerd.log import kafka
from ledgerd.log.base import LogRecord
from ledgerd.outbox.relay import PUBLISH_LINGER_MS


class ElectingConsumer:
    """Answers ``errors`` in turn, then the watermarks."""

    def __init__(self, *errors: int) -> None:
        self._errors = list(errors)
        self.calls = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self._errors:
            raise KafkaException(KafkaError(self._errors.pop(0)))
        return (0, 7)


def test_a_partition_between_leaders_is_read_once_it_has_one() -> None:
    consumer = ElectingConsumer(
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    )
    assert kafka._watermark_offsets(consumer, "t", 1) == (0, 7)  # type: ignore[arg-type]
    assert consumer.calls == 4


def test_other_errors_are_raised_at_once() -> None:
    consumer = ElectingConsumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        kafka._watermark_offsets(consumer, "t", 1)  # type: ignore[arg-type]
    assert consumer.calls == 1


def test_a_leader_that_never_comes_is_raised_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka, "_ADMIN_TIMEOUT_S", 0.5)
    consumer = ElectingConsumer(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        kafka._watermark_offsets(consumer, "t", 1)  # type: ignore[arg-type]
    assert 2 <= consumer.calls < 10


class FatalError:
    def fatal(self) -> bool:
        return True

    def __str__(self) -> str:
        return "gapless guarantee broken"


class FakeProducer:
    """librdkafka's Producer: queues records; ``fail_fatally`` fails them all the way a
    fatal error does (the error callback, then each record's delivery callback)."""

    made: ClassVar[list[FakeProducer]] = []

    def __init__(self, config: dict[str, object]) -> None:
        self.config = config
        self.queued: list[object] = []
        self.headers: list[object] = []
        self.purged = False
        FakeProducer.made.append(self)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        *,
        headers: object,
        on_delivery: object,
        **extra: object,
    ) -> None:
        self.queued.append(on_delivery)
        self.headers.append(headers)

    def fail_fatally(self) -> None:
        self.config["error_cb"](FatalError())  # type: ignore[operator]
        for callback in self.queued:
            if callback is not None:
                callback(FatalError(), None)  # type: ignore[operator]
        self.queued.clear()

    def flush(self, timeout: float) -> int:
        return len(self.queued)

    def purge(self) -> None:
        self.purged = True
        self.queued.clear()


@pytest.fixture
def fake_producers(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    FakeProducer.made = []
    monkeypatch.setattr(kafka, "Producer", FakeProducer)
    return FakeProducer.made


def test_a_gapless_producer_never_times_out_and_guards_gaps(
    fake_producers: list[FakeProducer],
) -> None:
    kafka.KafkaLog("kafka:9092").producer(gapless=True)
    kafka.KafkaLog("kafka:9092").producer()
    gapless, plain = (made.config for made in fake_producers)
    assert (gapless["message.timeout.ms"], gapless["enable.gapless.guarantee"]) == (0, True)
    assert plain["message.timeout.ms"] == 300_000
    assert "enable.gapless.guarantee" not in plain  # librdkafka warns whenever it is given
    assert gapless["enable.idempotence"] is True


def test_a_producer_may_ask_for_its_own_linger(fake_producers: list[FakeProducer]) -> None:
    """linger_ms overrides the log's default for that producer only (the events
    publisher's, which no round flushes)."""
    log = kafka.KafkaLog("kafka:9092", linger_ms=5)
    log.producer(gapless=True, linger_ms=50)
    log.producer()
    assert [made.config["linger.ms"] for made in fake_producers] == [50, 5]


def test_a_producer_naming_no_linger_batches_longer_than_the_relay(
    fake_producers: list[FakeProducer],
) -> None:
    """Producers no client waits for (the cache feed) take the log's default linger, which
    is longer than the relay's: the broker's CPU follows their requests (issue 22)."""
    log = kafka.KafkaLog("kafka:9092")
    log.producer()
    log.producer(linger_ms=PUBLISH_LINGER_MS)
    assert [made.config["linger.ms"] for made in fake_producers] == [
        kafka.LINGER_MS,
        PUBLISH_LINGER_MS,
    ]
    assert kafka.LINGER_MS > PUBLISH_LINGER_MS


def test_a_fatally_failed_producer_is_replaced_once_its_queue_is_empty(
    fake_producers: list[FakeProducer],
) -> None:
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    failures: list[Exception | None] = []
    producer.publish("events", b"k", b"1", partition=0, on_delivery=failures.append)
    producer.publish("events", b"k", b"2", partition=0, on_delivery=failures.append)
    first = fake_producers[0]
    first.fail_fatally()
    assert [str(f) for f in failures] == ["kafka delivery: gapless guarantee broken"] * 2
    assert producer.flush(1.0) == 0
    assert len(fake_producers) == 2
    producer.publish("events", b"k", b"3", partition=0)
    assert fake_producers[1].queued and not first.queued
    assert producer.flush(1.0) == 1  # the new one is not replaced again


def test_a_fatally_failed_producer_fails_what_it_still_holds(
    fake_producers: list[FakeProducer],
) -> None:
    """A failed instance delivers nothing more: a flush purges it instead of waiting."""
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    producer.publish("events", b"k", b"1", partition=0)
    first = fake_producers[0]
    first.fail_fatally()
    producer.publish("events", b"k", b"2", partition=0)  # queued on the failed instance
    assert producer.flush(1.0) == 0
    assert first.purged and len(fake_producers) == 2


def test_a_fatal_error_without_delivery_callbacks_still_replaces_the_producer(
    fake_producers: list[FakeProducer],
) -> None:
    """Records published without ``on_delivery`` carry no callback; the fatal error reaches
    the producer through librdkafka's error callback, and the next flush replaces it."""
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    producer.publish("events", b"k", b"1", partition=0)
    first = fake_producers[0]
    assert first.queued == [None]
    first.fail_fatally()
    assert producer.flush(1.0) == 0
    assert len(fake_producers) == 2
    assert fake_producers[1].config["error_cb"] == first.config["error_cb"]


@pytest.mark.parametrize(
    ("code", "replaced"), [(KafkaError._FATAL, True), (KafkaError._ALL_BROKERS_DOWN, False)]
)
def test_a_client_error_replaces_the_producer_only_if_fatal(
    fake_producers: list[FakeProducer],
    caplog: pytest.LogCaptureFixture,
    code: int,
    replaced: bool,
) -> None:
    """librdkafka's error callback with _FATAL (the code a client gets when it does not
    unwrap the fatal error) marks the producer failed; a passing error is only logged."""
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    with caplog.at_level(logging.ERROR, logger="confluent_kafka"):
        fake_producers[0].config["error_cb"](KafkaError(code))  # type: ignore[operator]
    assert producer.flush(1.0) == 0
    assert len(fake_producers) == (2 if replaced else 1)
    logged = [r.levelno for r in caplog.records if r.name == "confluent_kafka"]
    assert logged == [logging.ERROR]


def test_a_run_of_records_with_one_callback_shares_its_translator(
    fake_producers: list[FakeProducer],
) -> None:
    """The same ``on_delivery`` for many records makes one delivery translator, not one per
    record; another callback gets its own; each report still reaches its callback."""
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    reports: list[Exception | None] = []
    others: list[Exception | None] = []
    for value in (b"1", b"2", b"3"):
        producer.publish("events", b"k", value, partition=0, on_delivery=reports.append)
    producer.publish("events", b"k", b"4", partition=0, on_delivery=others.append)
    producer.publish("events", b"k", b"5", partition=0, on_delivery=reports.append)
    queued = fake_producers[0].queued
    assert queued[0] is queued[1] is queued[2]
    assert len({id(callback) for callback in queued}) == 3
    for callback in queued:
        callback(None, None)  # type: ignore[operator]
    assert (reports, others) == ([None] * 4, [None])


def test_headers_are_handed_over_without_a_copy_per_record(
    fake_producers: list[FakeProducer],
) -> None:
    """A tuple of headers repeated record after record becomes one list; a list is passed
    as it is; no headers are passed as None (librdkafka copies nothing)."""
    producer = kafka.KafkaLog("kafka:9092").producer()
    shared = (("schema", b"event"),)
    signed = [("ledgerd-mac", b"ab")]
    producer.publish("t", b"k", b"1", partition=0, headers=shared)
    producer.publish("t", b"k", b"2", partition=0, headers=shared)
    producer.publish("t", b"k", b"3", partition=0, headers=signed)
    producer.publish("t", b"k", b"4", partition=0, headers=(("schema", b"other"),))
    producer.publish("t", b"k", b"5", partition=0)
    producer.publish("t", b"k", b"6", partition=0, headers=[])
    sent = fake_producers[0].headers
    assert sent[0] is sent[1] and sent[0] == [("schema", b"event")]
    assert sent[2] is signed
    assert sent[3] == [("schema", b"other")]
    assert sent[4:] == [None, None]


def test_closing_drops_what_the_log_never_took(fake_producers: list[FakeProducer]) -> None:
    producer = kafka.KafkaLog("kafka:9092").producer(gapless=True)
    producer.publish("events", b"k", b"1", partition=0)
    producer.close()
    assert fake_producers[0].purged


def test_the_experimental_gapless_warning_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("confluent_kafka")
    with caplog.at_level(logging.WARNING, logger="confluent_kafka"):
        logger.warning(
            "CONFWARN [rdkafka#producer-2] [thrd:app]: Configuration property"
            " enable.gapless.guarantee is experimental: When set to `true`, ..."
        )
        logger.warning("CONFWARN [rdkafka#producer-2] [thrd:app]: something else")
    assert [r.getMessage()[-14:] for r in caplog.records] == ["something else"]


class FakeMessage:
    """A consumed librdkafka message, as far as ``_record`` reads it."""

    def __init__(self, headers: object, timestamp: tuple[int, int] = (2, 1234)) -> None:
        self._headers = headers
        self._timestamp = timestamp

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 9

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> object:
        return self._headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, ()),
        ([], ()),
        ([("ledgerd-mac", b"ab")], (("ledgerd-mac", b"ab"),)),
        ([("a", None)], (("a", b""),)),
        ([("a", b"1"), ("b", None)], (("a", b"1"), ("b", b""))),
        ([("a", "text")], (("a", b"text"),)),
    ],
)
def test_a_consumed_message_becomes_a_record_with_bytes_headers(
    headers: object, expected: tuple[tuple[str, bytes], ...]
) -> None:
    """Each header value reads as bytes (none as empty), the one-header case included."""
    record = kafka._record(FakeMessage(headers))  # type: ignore[arg-type]
    assert record == LogRecord("t", 2, 9, b"k", b"v", expected, 1234)


@pytest.mark.parametrize("stamp_type", [0, 1])  # none; the producer's CreateTime
def test_only_the_brokers_stamp_says_when_a_record_was_appended(stamp_type: int) -> None:
    """A producer's stamp says when it handed the record over, not when it joined the log
    (a retried send lands later): such a record's append time is unknown, 0."""
    record = kafka._record(FakeMessage(None, (stamp_type, 1234)))  # type: ignore[arg-type]
    assert record.appended_at_ms == 0


@dataclass
class Found:
    """A TopicPartition as librdkafka answers it (its ``error`` is read-only there)."""

    partition: int
    offset: int
    error: KafkaError | None


class FakeConsumer:
    """librdkafka's Consumer: keeps its configuration and answers ListOffsets."""

    made: ClassVar[list[FakeConsumer]] = []

    def __init__(self, config: dict[str, object]) -> None:
        self.config = config
        self.asked: list[list[tuple[str, int, int]]] = []
        self.ends: dict[int, int | KafkaError] = {}
        FakeConsumer.made.append(self)

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float) -> list[Found]:
        self.asked.append([(tp.topic, tp.partition, tp.offset) for tp in partitions])
        found = []
        for tp in partitions:
            end = self.ends[tp.partition]
            if isinstance(end, KafkaError):
                found.append(Found(tp.partition, -1001, end))
            else:
                found.append(Found(tp.partition, end, None))
        return found

    def poll(self, timeout: float) -> None:
        return None


def test_end_offsets_are_one_request_for_every_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ends of all partitions come from one ListOffsets call at the "latest" timestamp
    (-1), not from watermarks asked per partition, twice each (issue 22)."""
    FakeConsumer.made = []
    monkeypatch.setattr(kafka, "Consumer", FakeConsumer)
    log = kafka.KafkaLog("kafka:9092", partition_count=3)
    log._watermark_consumer()
    (watermarks,) = FakeConsumer.made
    watermarks.ends = {0: 4, 1: 0, 2: 9}
    assert log.end_offsets("t") == {0: 4, 1: 0, 2: 9}
    assert watermarks.asked == [[("t", 0, -1), ("t", 1, -1), ("t", 2, -1)]]


def test_an_end_offset_the_log_did_not_give_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition the answer carries an error for makes end_offsets raise LogUnavailable
    (retriable), not report an offset it does not know."""
    FakeConsumer.made = []
    monkeypatch.setattr(kafka, "Consumer", FakeConsumer)
    log = kafka.KafkaLog("kafka:9092", partition_count=2)
    log._watermark_consumer()
    (watermarks,) = FakeConsumer.made
    watermarks.ends = {0: 4, 1: KafkaError(KafkaError.LEADER_NOT_AVAILABLE)}
    with pytest.raises(LogUnavailable):
        log.end_offsets("t")


class FakeAdmin:
    """AdminClient's topic configs: answers ``described`` per topic (a config name to its
    value, or an error), records the alterations, or refuses them with ``refusal``."""

    def __init__(self, described: dict[str, dict[str, str]], refusal: int | None = None) -> None:
        self.described = described
        self.refusal = refusal
        self.altered: list[tuple[str, str, str]] = []

    @staticmethod
    def _done(value: object = None, error: Exception | None = None) -> Future[object]:
        future: Future[object] = Future()
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
        return future

    def describe_configs(self, resources: list[Any], **_: object) -> dict[Any, Future[object]]:
        return {
            r: self._done({k: SimpleNamespace(value=v) for k, v in self.described[r.name].items()})
            for r in resources
        }

    def incremental_alter_configs(
        self, resources: list[Any], **_: object
    ) -> dict[Any, Future[object]]:
        answers = {}
        for resource in resources:
            if self.refusal is not None:
                answers[resource] = self._done(error=KafkaException(KafkaError(self.refusal)))
                continue
            for entry in resource.incremental_configs:
                self.altered.append((resource.name, entry.name, entry.value))
            answers[resource] = self._done()
        return answers

    def poll(self, timeout: float) -> int:
        return 0


def stamping_log(admin: FakeAdmin) -> kafka.KafkaLog:
    log = kafka.KafkaLog("kafka:9092", partition_count=3)
    log._admin = admin  # type: ignore[assignment]
    return log


def test_existing_topics_stamped_by_producers_are_switched_and_the_others_left() -> None:
    """A topic whose broker omits the setting counts as not stamped."""
    admin = FakeAdmin(
        {
            "old": {"message.timestamp.type": "CreateTime"},
            "new": {"message.timestamp.type": "LogAppendTime"},
            "bare": {},
        }
    )
    stamping_log(admin)._stamp_appends(["old", "new", "bare"])
    assert sorted(admin.altered) == [
        ("bare", "message.timestamp.type", "LogAppendTime"),
        ("old", "message.timestamp.type", "LogAppendTime"),
    ]


def test_a_refused_switch_is_logged_and_the_start_goes_on() -> None:
    """No AlterConfigs right: the topic still works (a consumer then checks what it reads
    late), so start does not fail."""
    admin = FakeAdmin(
        {"old": {"message.timestamp.type": "CreateTime"}},
        refusal=KafkaError.TOPIC_AUTHORIZATION_FAILED,
    )
    with capture_logs() as logs:
        stamping_log(admin)._stamp_appends(["old"])
    assert admin.altered == []
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"].startswith("cannot have the broker stamp records")
    assert warning["topics"] == ["old"] and "TOPIC_AUTHORIZATION_FAILED" in warning["error"]
