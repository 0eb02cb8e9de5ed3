"""Parsing of MovieLens folders (GroupLens' ml-100k, ml-1m and ml-latest layouts) into catalog rows.

Ratings become events of kind ``rating`` whose ``event_id`` is
``{layout}:{user}:{item}:{timestamp}``: MovieLens holds one rating per user
and movie, so the id is unique and a second import of the same folder adds
nothing. Users and items keep the dataset's ids, optionally behind a prefix so
that two datasets can live side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from catalog.importers.files import data_file, text_opened
from catalog.importers.parsing import (
    ImportFailed,
    InvalidField,
    LineError,
    Parsed,
    delimited_records,
    parse_id,
    parse_number,
    parse_unix_timestamp,
    rows_parse,
    split_records,
)
from catalog.importers.progress import ProgressFactory, lines_tracked, no_progress
from catalog.services import EndUserRow, EventRow, ItemRow


@dataclass(frozen=True)
class MovielensLayout:
    name: str
    ratings: str
    movies: str
    users: str | None
    describes: str


ML_100K = MovielensLayout("ml-100k", "u.data", "u.item", "u.user", "ml-100k")
ML_1M = MovielensLayout("ml-1m", "ratings.dat", "movies.dat", "users.dat", "ml-1m")
ML_LATEST = MovielensLayout(
    "ml-latest", "ratings.csv", "movies.csv", None, "ml-latest-small, ml-latest, ml-20m, ml-25m"
)
LAYOUTS = (ML_100K, ML_1M, ML_LATEST)

# Used when an ml-100k folder lacks u.genre; the order is that of the genre flags in u.item.
ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# Genres that say "no genre": such movies get no category.
NO_GENRE = {"unknown", "(no genres listed)"}

# ml-1m's users.dat stores codes; these are the labels from its README.
ML_1M_AGE_GROUPS = {
    "1": "Under 18",
    "18": "18-24",
    "25": "25-34",
    "35": "35-44",
    "45": "45-49",
    "50": "50-55",
    "56": "56+",
}
ML_1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip


@dataclass
class MovielensData:
    layout: MovielensLayout
    items: Parsed[ItemRow] = field(default_factory=Parsed)
    users: Parsed[EndUserRow] = field(default_factory=Parsed)
    events: Parsed[EventRow] = field(default_factory=Parsed)

    @property
    def errors(self) -> list[LineError]:
        return [*self.items.errors, *self.users.errors, *self.events.errors]


def movielens_layout_detect(folder: Path) -> MovielensLayout:
    if not folder.is_dir():
        raise ImportFailed(f"{folder} is not a folder")
    found = [layout for layout in LAYOUTS if data_file(folder, layout.ratings)]
    if not found:
        looked_for = (
            ", ".join(f"{layout.ratings} ({layout.describes})" for layout in LAYOUTS) + ", each maybe .gz or .bz2"
        )
        raise ImportFailed(f"no MovieLens layout found in {folder}: looked for {looked_for}")
    if len(found) > 1:
        names = " and ".join(f"{layout.ratings} ({layout.name})" for layout in found)
        raise ImportFailed(f"{folder} holds {names}; keep one dataset per folder")
    return found[0]


def movielens_parse(folder: Path, *, id_prefix: str = "", progress: ProgressFactory = no_progress) -> MovielensData:
    """Read the items, users and ratings of a MovieLens folder; missing movie or user files are fine."""
    layout = movielens_layout_detect(folder)
    data = MovielensData(layout)
    reader = _Reader(folder, progress)
    if layout is ML_100K:
        genres = _ml100k_genres(reader)
        data.items = reader.parse(layout.movies, lambda lines: ml100k_items_parse(lines, genres, id_prefix=id_prefix))
        data.users = reader.parse(layout.users, lambda lines: ml100k_users_parse(lines, id_prefix=id_prefix))
        data.events = reader.parse(layout.ratings, lambda lines: ml100k_ratings_parse(lines, id_prefix=id_prefix))
    elif layout is ML_1M:
        data.items = reader.parse(layout.movies, lambda lines: ml1m_movies_parse(lines, id_prefix=id_prefix))
        data.users = reader.parse(layout.users, lambda lines: ml1m_users_parse(lines, id_prefix=id_prefix))
        data.events = reader.parse(layout.ratings, lambda lines: ml1m_ratings_parse(lines, id_prefix=id_prefix))
    else:
        reader.encoding = "utf-8"
        data.items = reader.parse(layout.movies, lambda lines: ml_latest_movies_parse(lines, id_prefix=id_prefix))
        data.events = reader.parse(layout.ratings, lambda lines: ml_latest_ratings_parse(lines, id_prefix=id_prefix))
    return data


# ml-100k ---------------------------------------------------------------------------------------------------------


def ml100k_genres_parse(lines: Iterable[str]) -> Parsed[tuple[int, str]]:
    def build(fields: list[str]) -> tuple[int, str]:
        name, index = fields
        if not index.strip().isdigit():
            raise InvalidField("invalid genre", f"genre index {index!r} is not a whole number")
        return int(index), name.strip()

    return rows_parse(split_records(lines, separator="|", width=2), build, source="u.genre")


def ml100k_items_parse(lines: Iterable[str], genres: list[str], *, id_prefix: str = "") -> Parsed[ItemRow]:
    """``u.item``: id|title|release date|video release date|IMDb URL|one 0/1 flag per genre."""

    def build(fields: list[str]) -> ItemRow:
        external_id, title, release_date, video_release_date, imdb_url, *flags = fields
        attributes = {"release_date": release_date, "video_release_date": video_release_date, "imdb_url": imdb_url}
        return ItemRow(
            external_id=id_prefix + parse_id(external_id, "movie id"),
            title=title.strip(),
            categories=_flagged_genres(flags, genres),
            attributes={name: value.strip() for name, value in attributes.items() if value.strip()},
        )

    return rows_parse(split_records(lines, separator="|", width=5 + len(genres)), build, source="u.item")


def ml100k_users_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[EndUserRow]:
    """``u.user``: id|age|gender|occupation|zip code."""

    def build(fields: list[str]) -> EndUserRow:
        external_id, age, gender, occupation, zip_code = (value.strip() for value in fields)
        if not age.isdigit():
            raise InvalidField("not a number", f"age {age!r} is not a whole number")
        attributes = {"age": int(age), "gender": gender, "occupation": occupation, "zip_code": zip_code}
        return EndUserRow(external_id=id_prefix + parse_id(external_id, "user id"), attributes=attributes)

    return rows_parse(split_records(lines, separator="|", width=5), build, source="u.user")


def ml100k_ratings_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[EventRow]:
    """``u.data``: user, item, rating and unix timestamp, tab-separated."""
    build = _rating_builder(ML_100K, id_prefix)
    return rows_parse(split_records(lines, separator="\t", width=4), lambda fields: build(*fields), source="u.data")


def _ml100k_genres(reader: _Reader) -> list[str]:
    if not data_file(reader.folder, "u.genre"):
        return list(ML_100K_GENRES)
    parsed = reader.parse("u.genre", ml100k_genres_parse)
    if parsed.errors:
        # Without the genre list no line of u.item can be read, so this cannot be skipped.
        raise ImportFailed.for_lines(parsed.errors)
    by_index = dict(parsed.rows)
    if sorted(by_index) != list(range(len(by_index))):
        raise ImportFailed(f"u.genre: genre indexes {sorted(by_index)} are not 0 to {len(by_index) - 1}")
    return [by_index[index] for index in range(len(by_index))]


def _flagged_genres(flags: list[str], genres: list[str]) -> list[str]:
    categories = []
    for flag, genre in zip(flags, genres, strict=True):
        if flag.strip() not in ("0", "1"):
            raise InvalidField("invalid genre", f"genre flag {flag!r} for {genre} is not 0 or 1")
        if flag.strip() == "1" and genre not in NO_GENRE:
            categories.append(genre)
    return categories


# ml-1m -----------------------------------------------------------------------------------------------------------


def ml1m_movies_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[ItemRow]:
    """``movies.dat``: MovieID::Title::Genres, genres separated by ``|``."""

    def build(fields: list[str]) -> ItemRow:
        external_id, title, genres = fields
        return _movie(id_prefix + parse_id(external_id, "movie id"), title, genres)

    return rows_parse(split_records(lines, separator="::", width=3), build, source="movies.dat")


def ml1m_users_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[EndUserRow]:
    """``users.dat``: UserID::Gender::Age::Occupation::Zip-code, age and occupation as codes."""

    def build(fields: list[str]) -> EndUserRow:
        external_id, gender, age, occupation, zip_code = (value.strip() for value in fields)
        attributes = {
            "gender": gender,
            "age_group": ML_1M_AGE_GROUPS.get(age, age),
            "occupation": _ml1m_occupation(occupation),
            "zip_code": zip_code,
        }
        return EndUserRow(external_id=id_prefix + parse_id(external_id, "user id"), attributes=attributes)

    return rows_parse(split_records(lines, separator="::", width=5), build, source="users.dat")


def ml1m_ratings_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[EventRow]:
    """``ratings.dat``: UserID::MovieID::Rating::Timestamp."""
    build = _rating_builder(ML_1M, id_prefix)
    return rows_parse(
        split_records(lines, separator="::", width=4), lambda fields: build(*fields), source="ratings.dat"
    )


def _ml1m_occupation(code: str) -> str:
    if not code.isdigit():
        raise InvalidField("not a number", f"occupation code {code!r} is not a whole number")
    return ML_1M_OCCUPATIONS[int(code)] if int(code) < len(ML_1M_OCCUPATIONS) else code


# ml-latest -------------------------------------------------------------------------------------------------------


def ml_latest_movies_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[ItemRow]:
    """``movies.csv``: movieId,title,genres with a header and CSV quoting (titles may hold commas)."""
    records = _csv_records(lines, ("movieId", "title", "genres"), source="movies.csv")

    def build(record: dict[str, str]) -> ItemRow:
        return _movie(id_prefix + parse_id(record["movieId"], "movie id"), record["title"], record["genres"])

    return rows_parse(records, build, source="movies.csv")


def ml_latest_ratings_parse(lines: Iterable[str], *, id_prefix: str = "") -> Parsed[EventRow]:
    """``ratings.csv``: userId,movieId,rating,timestamp with a header."""
    columns = ("userId", "movieId", "rating", "timestamp")
    build = _rating_builder(ML_LATEST, id_prefix)
    records = _csv_records(lines, columns, source="ratings.csv")
    return rows_parse(records, lambda record: build(*(record[name] for name in columns)), source="ratings.csv")


def _csv_records(
    lines: Iterable[str], columns: tuple[str, ...], *, source: str
) -> Iterator[tuple[int, dict[str, str] | LineError]]:
    header, records = delimited_records(lines, delimiter=",")
    missing = [name for name in columns if name not in header]
    if missing:
        raise ImportFailed(f"{source}: the header {','.join(header)!r} lacks {', '.join(missing)}")
    return records


# Shared ----------------------------------------------------------------------------------------------------------


def _movie(external_id: str, title: str, genres: str) -> ItemRow:
    categories = [genre.strip() for genre in genres.split("|") if genre.strip() and genre.strip() not in NO_GENRE]
    return ItemRow(external_id=external_id, title=title.strip(), categories=categories)


def _rating_builder(layout: MovielensLayout, id_prefix: str) -> Callable[[str, str, str, str], EventRow]:
    def build(user: str, item: str, rating: str, timestamp: str) -> EventRow:
        user_id = id_prefix + parse_id(user, "user id")
        item_id = id_prefix + parse_id(item, "movie id")
        occurred_at: datetime = parse_unix_timestamp(timestamp.strip())
        return EventRow(
            user=user_id,
            item=item_id,
            occurred_at=occurred_at,
            kind="rating",
            value=parse_number(rating, "rating"),
            event_id=f"{layout.name}:{user_id}:{item_id}:{timestamp.strip()}",
        )

    return build


class _Reader:
    """Opens the files of one folder with the dataset's encoding and a progress bar; an absent file parses empty."""

    def __init__(self, folder: Path, progress: ProgressFactory) -> None:
        self.folder = folder
        self.progress = progress
        self.encoding = "latin-1"  # ml-100k and ml-1m predate UTF-8 in MovieLens

    def parse(self, name: str | None, parse: Callable[[Iterable[str]], Parsed]) -> Parsed:
        path = data_file(self.folder, name) if name else None
        if path is None:
            return Parsed()
        with self._lines(path) as lines:
            return parse(lines_tracked(lines, progress=self.progress, description=f"Parsing {path.name}"))

    @contextmanager
    def _lines(self, path: Path) -> Iterator[Iterable[str]]:
        try:
            with text_opened(path, encoding=self.encoding) as file:
                yield file
        except UnicodeDecodeError as error:
            raise ImportFailed(f"{path.name} is not valid {self.encoding} text ({error.reason})") from None
