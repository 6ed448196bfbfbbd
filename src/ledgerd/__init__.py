"""ledgerd: a balance service with durable, exactly-once balance changes."""

__version__ = "0.1.0"
