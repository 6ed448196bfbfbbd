"""``ledgerd bench``: throughput and latency of ledgerd, measured honestly.

Each scenario starts its own servers (fresh database, topics and cache
prefix), drives them through the public gRPC API, and, when it changed
balances, waits until the consumer caught up and audits the store.
"""
