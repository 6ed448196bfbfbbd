"""Helpers for running ledgerd from outside, shipped with the package (as structlog ships
``structlog.testing``): the benchmark (``ledgerd bench``) and the test harness
(tests/harness) both start ``ledgerd serve`` children through ``serve_process``.

Nothing here touches data a deployment already holds: it only creates new databases,
topics and groups under fresh names, and never drops one.
"""
