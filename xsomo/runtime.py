"""Where and how wide computations run: the device and the CPU thread count.

One place for both, so training, prediction and the experiments agree:
:func:`resolve_device` turns ``"auto"`` into ``"cuda"`` or ``"cpu"``;
:func:`cpu_cores` is the number of cores this process may use (its affinity, not the
machine's total), the base of every thread budget, which callers pass on explicitly.

>>> resolve_device("cpu")
'cpu'
>>> cpu_cores() >= 1
True
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

__all__ = ["cpu_cores", "exit_with_parent", "resolve_device", "user_stacklevel"]


def resolve_device(device: Any = "auto") -> str:
    """``"cuda"`` when ``device`` is ``"auto"`` (or None) and a GPU is present, else ``"cpu"``;
    any other value (``"cpu"``, ``"cuda:1"``, a ``torch.device``) as its string."""
    if device is None or device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def cpu_cores() -> int:
    """Cores this process may run on (``sched_getaffinity`` where the OS has it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def exit_with_parent(parent: int, every: float = 1.0) -> threading.Thread:
    """In a worker process: a daemon thread that ends the process when ``parent`` (the pid that
    started it) is gone. A parent killed without a chance to stop its workers (SIGKILL, or a
    SIGTERM to it alone) would otherwise leave them computing, and writing, for minutes."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    thread = threading.Thread(target=watch, daemon=True, name="xsomo-parent-watch")
    thread.start()
    return thread


def user_stacklevel(skip: tuple[str, ...] = ("xarray",)) -> int:
    """``stacklevel`` for a ``warnings.warn`` in the caller that points at the first frame outside xsomo.

    A warning about the user's data belongs to the user's line (and pytest's
    ``error:::xsomo.*`` filter then treats it as the user's, not as a fault of xsomo);
    frames of the packages in ``skip`` (xarray, which calls xsomo's backend) are passed too.
    """
    import sys

    packages = tuple(p + "." for p in (__name__.split(".")[0], *skip))
    frame = sys._getframe(1)  # the function that warns
    level = 1
    while frame.f_back is not None and (frame.f_globals.get("__name__", "") + ".").startswith(packages):
        frame = frame.f_back
        level += 1
    return level  # (the outermost frame where xsomo itself is the caller, e.g. its CLI)
