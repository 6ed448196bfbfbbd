"""The MySQL/MariaDB schema, as numbered migrations (SQL both servers accept)."""

from __future__ import annotations

# Identifiers and request ids compare byte for byte (ascii_bin): "A1" and "a1" differ.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS change_requests (
                request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                user_id BIGINT UNSIGNED NOT NULL,
                currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                type TINYINT UNSIGNED NOT NULL,
                amount DECIMAL(38,18) NOT NULL,
                memo VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                status TINYINT UNSIGNED NOT NULL,
                reject_reason TINYINT UNSIGNED NOT NULL DEFAULT 0,
                attempts INT UNSIGNED NOT NULL DEFAULT 0,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                sent_at_ms BIGINT NULL,
                applied_at_ms BIGINT NULL,
                PRIMARY KEY (request_id),
                KEY change_requests_status (status, created_at_ms)
            ) ENGINE=InnoDB""",
            """CREATE TABLE IF NOT EXISTS balances (
                user_id BIGINT UNSIGNED NOT NULL,
                currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                available DECIMAL(38,18) NOT NULL,
                frozen DECIMAL(38,18) NOT NULL,
                version BIGINT UNSIGNED NOT NULL,
                PRIMARY KEY (user_id, currency)
            ) ENGINE=InnoDB""",
            """CREATE TABLE IF NOT EXISTS journal (
                user_id BIGINT UNSIGNED NOT NULL,
                currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                version BIGINT UNSIGNED NOT NULL,
                request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                type TINYINT UNSIGNED NOT NULL,
                amount DECIMAL(38,18) NOT NULL,
                available_after DECIMAL(38,18) NOT NULL,
                frozen_after DECIMAL(38,18) NOT NULL,
                applied_at_ms BIGINT NOT NULL,
                memo VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                PRIMARY KEY (user_id, currency, version),
                UNIQUE KEY journal_request_id (request_id)
            ) ENGINE=InnoDB""",
            """CREATE TABLE IF NOT EXISTS partition_offsets (
                topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                partition_id INT NOT NULL,
                next_offset BIGINT NOT NULL,
                epoch BIGINT NOT NULL,
                PRIMARY KEY (topic, partition_id)
            ) ENGINE=InnoDB""",
            """CREATE TABLE IF NOT EXISTS leader_locks (
                name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                owner VARCHAR(128) NOT NULL,
                epoch BIGINT NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                PRIMARY KEY (name)
            ) ENGINE=InnoDB""",
        ],
    ),
]
