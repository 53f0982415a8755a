"""Named crash points for the kill tests: ``ENV=point[:n]`` SIGKILLs the process the n-th
time it reaches ``point``.

Long jobs whose reruns must complete without duplicates (a store copy, a digest send, a
library import) call their hook at the moments that matter (a batch written but not
committed, just committed...). Unset, a hook is one string comparison per call.
"""

from __future__ import annotations

import os
import signal


class CrashHook:
    """Reads ``env_var`` once; ``hook(point)`` kills the process at the configured hit."""

    def __init__(self, env_var: str) -> None:
        point, _, n = os.environ.get(env_var, "").partition(":")
        self.point, self.n, self.count = point, int(n or 1), 0

    def __call__(self, point: str) -> None:
        if point == self.point:
            self.count += 1
            if self.count == self.n:
                os.kill(os.getpid(), signal.SIGKILL)
