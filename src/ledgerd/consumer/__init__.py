"""The batch consumer: applies the event log to balances, one writer per partition."""
