"""The gRPC API: ledgerd.v1.BalanceService, health and reflection."""
