"""``python -m ledgerd.cli``: how ledgerd starts its own child processes."""

import sys

from ledgerd.cli import main

sys.exit(main())
