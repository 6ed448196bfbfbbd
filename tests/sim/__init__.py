"""A deterministic, seeded simulation of the read path and the consumer (VOPR-style)."""
