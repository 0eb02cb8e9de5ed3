"""Opening import files as text, compressed (gzip, bzip2, a zip holding one file) or not.

Datasets usually ship compressed; reading them as they are saves unpacking by
hand and the disk space of the unpacked copy.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TextIO

from catalog.importers.parsing import ImportFailed

COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".zip": "zip"}


def data_name(path: Path) -> str:
    """The name of the data inside ``path``: ``events.csv`` for ``events.csv.gz`` or a zip holding it."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return PurePosixPath(zip_member(path)).name
    return path.stem if suffix in COMPRESSIONS else path.name


def data_file(folder: Path, name: str) -> Path | None:
    """``folder / name``, or its ``.gz`` or ``.bz2`` copy; None when there is neither."""
    for candidate in (name, f"{name}.gz", f"{name}.bz2"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def zip_member(path: Path) -> str:
    """The one file a zip holds (folders and macOS metadata aside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [
                info.filename
                for info in archive.infolist()
                if not info.is_dir() and not info.filename.startswith("__MACOSX/")
            ]
    except (zipfile.BadZipFile, OSError) as error:
        raise ImportFailed(f"{path.name} is not a readable zip file ({error})") from None
    if len(names) != 1:
        found = ", ".join(names) or "no file"
        raise ImportFailed(f"{path.name} must hold exactly one file to import, found {found}")
    return names[0]


@contextmanager
def text_opened(path: Path, *, encoding: str) -> Iterator[TextIO]:
    """``path`` opened as text, decompressed on the fly; a corrupt archive fails the import naming the file."""
    compression = COMPRESSIONS.get(path.suffix.lower())
    try:
        with _opened(path, compression, encoding) as handle:
            yield handle
    except (gzip.BadGzipFile, zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        if compression is None:
            raise
        raise ImportFailed(f"{path.name} is not a readable {compression} file ({error})") from None


@contextmanager
def _opened(path: Path, compression: str | None, encoding: str) -> Iterator[TextIO]:
    if compression == "gzip":
        with gzip.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle
    elif compression == "bzip2":
        with bz2.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle
    elif compression == "zip":
        member = zip_member(path)
        with zipfile.ZipFile(path) as archive, archive.open(member) as raw:
            yield io.TextIOWrapper(raw, encoding=encoding, newline="")
    else:
        with open(path, encoding=encoding, newline="") as handle:
            yield handle
