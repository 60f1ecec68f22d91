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


def solver_banner_to_stderr() -> None:
    """HiGHS prints its banner on stdout when a process makes its first solver: make that one now, with the
    banner on stderr, so that a live view or a plain log on stdout does not get it mid-run."""
    import highspy

    with native_stdout_to_stderr():
        highspy.Highs()  # type: ignore[no-untyped-call]
