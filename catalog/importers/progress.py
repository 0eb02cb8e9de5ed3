"""Progress reporting for long imports, kept behind a tiny interface so the importers stay UI-free.

A progress factory is called as ``progress(description=..., total=..., unit=...)``
and returns a bar with ``update(n)`` and ``close()``; ``tqdm`` is one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from tqdm import tqdm


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


ProgressFactory = Callable[..., ProgressBar]


class _SilentBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(*, description: str, total: int | None = None, unit: str = "rows") -> ProgressBar:
    return _SilentBar()


def terminal_progress(*, enabled: bool = True) -> ProgressFactory:
    """Bars on stderr, shown only when stderr is a terminal (never in logs, pipes or tests)."""
    shown = enabled and sys.stderr.isatty()

    def progress(*, description: str, total: int | None = None, unit: str = "rows") -> ProgressBar:
        return tqdm(desc=description, total=total, unit=unit, unit_scale=True, file=sys.stderr, disable=not shown)

    return progress


def lines_tracked(lines: Iterable[str], *, progress: ProgressFactory, description: str) -> Iterator[str]:
    """Pass ``lines`` through, advancing a bar; updates are batched because a call per line costs more than parsing."""
    batch = 1000
    bar = progress(description=description, unit=" lines")
    count = 0
    try:
        for count, line in enumerate(lines, start=1):
            if count % batch == 0:
                bar.update(batch)
            yield line
        bar.update(count % batch)
    finally:
        bar.close()
