"""Why training stops before its last epoch: a stop asked for (Ctrl-C and the other stop signals ask training to stop
after the current batch, so that the state can be saved and the run resumed exactly, instead of ending the program in
the middle of a step), or a loss that is no longer a number (:class:`TrainingDiverged`)."""

from __future__ import annotations

import contextlib
import signal
import threading


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite; the message says which state the model was left in."""


#: The signals that ask ``scratchae train`` to stop after the current batch and save: Ctrl-C (SIGINT), ``kill`` or a
#: batch scheduler's time limit (SIGTERM), a closed terminal (SIGHUP, where the system has it).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequest:
    """A request to stop training after the current batch: ``requested`` becomes true, ``fit`` stops.

    ``signal`` is the signal that asked first (``signal.SIGINT`` for Ctrl-C), or None.
    """

    def __init__(self):
        self.requested = False
        self.signal = None

    def on_ctrl_c(self):
        """While the block runs, Ctrl-C sets ``requested`` instead of raising KeyboardInterrupt."""
        return self.on_signals((signal.SIGINT,))

    @contextlib.contextmanager
    def on_signals(self, signals=STOP_SIGNALS):
        """While the block runs, each of ``signals`` sets ``requested`` instead of ending the program (only the main
        thread receives signals; elsewhere nothing changes). The handlers before the block are put back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def request_stop(signum, frame):
            self.requested = True
            self.signal = self.signal or signal.Signals(signum)

        previous = {signum: signal.signal(signum, request_stop) for signum in signals}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
