"""Turn SIGTERM and SIGINT into a stop request for a consumer loop."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from commerce.logging import get_logger

log = get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Call `request_stop` on the first SIGTERM or SIGINT, and restore the previous handlers on exit.

    The first signal also restores the previous handlers, so a second signal
    ends the process at once, as an operator pressing Ctrl-C twice expects.
    Python accepts signal handlers only in the main thread, so elsewhere
    (a test thread) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def stop(signal_name: str) -> None:
        log.info("stop_signal_received", signal=signal_name)
        request_stop()

    def on_signal(signum: int, _frame) -> None:
        restore()
        # The handler interrupts the main thread between two bytecodes, possibly
        # while it holds the lock of the threading.Event that request_stop sets,
        # so setting it here could deadlock. A short-lived thread waits for the lock instead.
        threading.Thread(target=stop, args=(signal.Signals(signum).name,), name="stop-request", daemon=True).start()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        yield
    finally:
        restore()
