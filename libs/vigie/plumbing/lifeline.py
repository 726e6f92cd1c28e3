"""A child process that dies with its parent, whatever killed the parent (``kill -9`` included).

Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal the child when its parent exits: an orphan
masking worker would otherwise keep consuming its cameras beside the restarted service's workers
(issue 17: two consumers, every other frame each). Our own programs call ``die_with_parent`` first
thing; another program (nats-server, postgres…) is started through a small Python launcher
(``lifeline_argv``) that sets the signal and then becomes the program (the signal survives
``exec``). Not a ``preexec_fn``: Python code between fork and exec can deadlock a threaded parent.
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


# The launcher as a one-liner any Python runs (no import of this package): PostgreSQL is started
# as its own user, who may not reach the project's virtual environment.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, int(signal.SIGTERM), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def lifeline_argv(argv: list[str], parent_pid: int, *, python: str = sys.executable) -> list[str]:
    """``argv`` run so that it dies (SIGTERM) with ``parent_pid``."""
    return [python, "-c", _LAUNCHER, str(parent_pid), *argv]
