"""Pure balance rules: no I/O, no clocks, no globals."""
