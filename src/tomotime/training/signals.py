"""Ctrl-C and SIGTERM during training: finish the step, checkpoint, exit.

The first SIGINT (Ctrl-C) or SIGTERM (what cluster schedulers send before
killing a job) becomes a request checked between training steps, so the
checkpoint written on the way out is consistent; a second signal interrupts
at once. Only active in the main thread (signals cannot be handled elsewhere).
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["InterruptFlag", "TrainingInterrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing its checkpoint.

    Attributes
    ----------
    signum : int
        The signal (``exit_code`` is the shell's ``128 + signum``: 130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class InterruptFlag(contextlib.AbstractContextManager):
    """Turn the first SIGINT/SIGTERM into a request (``signum``) checked between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:
            raise TrainingInterrupted(signum)
        self.signum = signum

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in _SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
