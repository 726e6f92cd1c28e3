"""A child process that dies with its parent, whatever killed the parent (``kill -9`` included).

Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal the child when its parent exits: an orphan
masking worker would otherwise keep consuming its cameras beside the restarted service's workers
(issue 17: two consumers, every other frame each).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def death_signal(sig: int) -> None:
    """Ask the kernel for ``sig`` when the parent (the thread that forked us) exits. Safe in a
    ``preexec_fn``: it survives ``exec``."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Call first thing in the child; exits at once if the parent is already gone."""
    death_signal(sig)
    # The parent may have died before the request was made: then nobody would signal us.
    if os.getppid() != parent_pid:
        os._exit(1)
