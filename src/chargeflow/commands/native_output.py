"""Keep stdout for our own output when native code (HiGHS) prints there."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def native_stdout_to_stderr() -> Iterator[TextIO]:
    """Send what native code prints on stdout (HiGHS prints a banner) to stderr, so that stdout holds only
    our output (``--json`` must parse); yields a stream on the real stdout for our own lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(os.dup(saved), "w")
    try:
        yield out
    finally:
        out.close()
        os.dup2(saved, 1)
        os.close(saved)
