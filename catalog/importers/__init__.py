"""Imports of MovieLens folders and of interaction and item files into the catalog.

Parsing (:mod:`.movielens`, :mod:`.tabular`, :mod:`.parsing`) is pure and
reports bad lines as :class:`LineError`; :mod:`.imports` writes through
:mod:`catalog.services` in one transaction.
"""

from catalog.importers.imports import ImportReport, interactions_file_import, items_file_import, movielens_import
from catalog.importers.parsing import ImportFailed, LineError
from catalog.importers.tabular import InteractionColumns, ItemColumns, TabularFile, tabular_file

__all__ = [
    "ImportFailed",
    "ImportReport",
    "InteractionColumns",
    "ItemColumns",
    "LineError",
    "TabularFile",
    "interactions_file_import",
    "items_file_import",
    "movielens_import",
    "tabular_file",
]
