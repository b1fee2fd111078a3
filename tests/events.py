"""What happens during a test, as events a test can wait on instead of sleeping: a request
to the fixture web, a message to the SMTP server or the Slack receiver, a log line of a
daemon. Each of them calls `happened()`; `wait_for` re-checks its condition at each one."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

_changed = threading.Condition()
SAFETY_NET = 1.0  # seconds: a condition on stored state is re-checked this often too


def happened() -> None:
    with _changed:
        _changed.notify_all()


def wait_for(ready: Callable[[], object], what: str, timeout: float = 60,
             alive: Callable[[], None] = lambda: None) -> None:
    """Return once `ready()` is true; fail after `timeout` seconds, or when `alive()` raises
    (a daemon that exited)."""
    deadline = time.monotonic() + timeout
    with _changed:
        while not ready():
            alive()
            left = deadline - time.monotonic()
            assert left > 0, f"timed out after {timeout:g}s waiting for {what}"
            _changed.wait(min(left, SAFETY_NET))
