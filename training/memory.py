"""Whether a model's fit fits in the memory its worker has, checked before the fit starts.

EASE and its group variant hold dense item × item matrices: their peak grows with the square of the catalogue (about
32 bytes × items² for EASE: 6 GiB at 14,000 items, 27 GiB at 30,000). The sequential models' full softmax scores
every item at every trained position of a batch (about 10 bytes × batch_size × max_length × items: 12 GiB for
100,000 items at the defaults). A catalogue too large for the worker would otherwise fail part-way: with the
allocator's message, or killed by the kernel, when the run fails minutes later as a lost worker with no word of why.
Such a run now fails before its fit and says what it needed, what the worker had, and what to change.

What a worker has: on a GPU, the device's free memory; on the CPU, the memory the system calls available
(``MemAvailable``), or less where a control group caps the process (a container's memory limit);
``RECSYS_TRAINING_MEMORY_MB`` sets it instead (where several workers share a host, each its part). Where none can
be read, nothing is checked.
"""

from __future__ import annotations

from pathlib import Path

import torch
from django.conf import settings

MIB, GIB = 1 << 20, 1 << 30


class TooLarge(Exception):
    """The model's fit needs more memory than its worker has."""


def memory_check(*, needed: int | None, device: torch.device, what: str, hint: str) -> None:
    """Raise :class:`TooLarge` when ``needed`` bytes (None: not estimated) exceed what the worker has; its message
    ends with ``hint``, what else to change."""
    if needed is None:
        return
    available = memory_available(device)
    if available is None or needed <= available:
        return
    raise TooLarge(
        f"{what} needs about {_size(needed)} of memory at its peak, and this worker has {_size(available)}. "
        f"Raise the scenario's minimum events per item or narrow its slice (fewer items need less), or {hint}"
    )


def _size(size: int) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / MIB:.0f} MiB"


def memory_available(device: torch.device) -> int | None:
    """Bytes a fit on ``device`` may use, as the module says (None when unknown)."""
    if settings.RECSYS_TRAINING_MEMORY_MB:
        return settings.RECSYS_TRAINING_MEMORY_MB * MIB
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    limits = [value for value in (_system_available(), control_group_room()) if value is not None]
    return min(limits) if limits else None


def _system_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "MemAvailable":
                return int(value.split()[0]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def control_group_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The room left under this process's control-group memory limit (v2, then v1), or None without a limit. Its
    usage counts the page cache, which the kernel reclaims before it refuses memory: the inactive part is left out,
    as container runtimes count a working set."""
    for folder, limit, usage, inactive in (
        (root, "memory.max", "memory.current", "inactive_file"),
        (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
    ):
        try:
            cap, used = (Path(folder, name).read_text().strip() for name in (limit, usage))
            stat = dict(line.split() for line in Path(folder, "memory.stat").read_text().splitlines())
            working = int(used) - int(stat.get(inactive, 0))
        except (OSError, ValueError):
            continue
        if cap.isdigit() and int(cap) < 1 << 60:  # "max", or v1's near-2⁶³ "no limit"
            return max(int(cap) - working, 0)
    return None
