"""The outbox: durable acceptance of change requests, and the relay to the event log."""
