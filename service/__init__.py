"""FastAPI service and CLI of logit-search."""

import os

__version__ = "0.1.0"

# OpenBLAS's worker threads busy-wait 2^28 cycles (about 0.1 s) after each call before they sleep. Where there
# are as many cores as BLAS threads, that spinning takes the cores the event loop and the next request need:
# a search over 10,000 items measured 2.5 ms over HTTP with it, 1.4 ms without. OpenBLAS reads this once, when
# numpy loads it; the service's entry points import this package first. The environment's own value wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
