"""campaign-dialer: outbound AI voice-call campaigns that put the called person first."""

import os
import platform
import sys

__version__ = "0.1.0"

# Arrow's allocations from jemalloc, which hands freed pages back to the system, instead of
# mimalloc (arrow's default), which keeps the segments a step's temporaries were spread
# over: a resumed million-row run rests about 90 MB lower during its calls. Decided here,
# before arrow is loaded (its C++ default pool reads this once, at its first allocation);
# on Linux x86-64, whose wheels have jemalloc. A value already in the environment wins.
if sys.platform == "linux" and platform.machine() == "x86_64":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
