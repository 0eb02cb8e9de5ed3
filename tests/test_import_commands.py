"""The import commands against the real PostgreSQL, on small files written in the datasets' real formats."""

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.importers import imports
from catalog.models import EndUser, Interaction, Item

pytestmark = pytest.mark.django_db

ML_100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def run(command: str, *args: object) -> str:
    out = StringIO()
    call_command(command, *(str(arg) for arg in args), "--no-progress", stdout=out)
    return out.getvalue()


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def counts() -> tuple[int, int, int]:
    return Item.objects.count(), EndUser.objects.count(), Interaction.objects.count()


def assert_refused_writing_nothing(match: str, command: str, *args: object) -> None:
    """``command`` fails with an error that matches ``match`` and leaves the database empty."""
    with pytest.raises(CommandError, match=match):
        run(command, *args)
    assert counts() == (0, 0, 0)


def genre_flags(*names: str) -> str:
    return "|".join("1" if genre in names else "0" for genre in ML_100K_GENRES)


@pytest.fixture
def ml_100k(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    write(folder / "u.genre", [f"{name}|{index}" for index, name in enumerate(ML_100K_GENRES)] + [""])
    url = "http://us.imdb.com/M/title-exact?"
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||{url}Toy%20Story%20(1995)|"
        + genre_flags("Animation", "Children's", "Comedy"),
        f"2|GoldenEye (1995)|01-Jan-1995||{url}GoldenEye%20(1995)|" + genre_flags("Action", "Adventure", "Thriller"),
        f"3|Misérables, Les (1995)|01-Jan-1995||{url}Mis%E9rables|" + genre_flags("Drama", "Musical"),
        "267|unknown||||" + genre_flags("unknown"),
    ]
    write(folder / "u.item", items, encoding="latin-1")
    write(folder / "u.user", ["1|24|M|technician|85711", "2|53|F|other|94043"])
    write(folder / "u.data", ["1\t1\t5\t874965758", "1\t2\t3\t876893171", "2\t1\t4\t888550871", "2\t3\t2\t888551234"])
    return folder


# import_movielens ------------------------------------------------------------------------------------------------


def test_import_movielens_loads_an_ml_100k_folder(ml_100k):
    # when
    output = run("import_movielens", ml_100k)

    # then
    assert counts() == (4, 2, 4)
    assert "ml-100k layout" in output
    les_miserables = Item.objects.get(external_id="3")
    assert les_miserables.title == "Misérables, Les (1995)"
    assert les_miserables.categories == ["Drama", "Musical"]
    assert Item.objects.get(external_id="1").categories == ["Animation", "Children's", "Comedy"]
    assert Item.objects.get(external_id="267").categories == []
    assert EndUser.objects.get(external_id="2").attributes == {
        "age": 53,
        "gender": "F",
        "occupation": "other",
        "zip_code": "94043",
    }
    rating = Interaction.objects.get(user__external_id="2", item__external_id="3")
    assert (rating.kind, rating.value) == ("rating", 2.0)
    assert rating.occurred_at == datetime.fromtimestamp(888551234, tz=UTC)
    assert rating.event_id == "ml-100k:2:3:888551234"


def test_import_movielens_twice_adds_nothing(ml_100k):
    # given
    run("import_movielens", ml_100k)

    # when
    output = run("import_movielens", ml_100k)

    # then
    assert counts() == (4, 2, 4)
    assert "0 created, 4 duplicates" in output
    assert "items:  0 created, 0 updated" in output


def test_import_movielens_id_prefix_keeps_two_copies_apart(ml_100k):
    # given
    run("import_movielens", ml_100k)

    # when
    run("import_movielens", ml_100k, "--id-prefix", "copy:")

    # then
    assert counts() == (8, 4, 8)
    assert Interaction.objects.filter(user__external_id="copy:2", item__external_id="copy:3").exists()


def test_import_movielens_loads_an_ml_latest_small_folder(tmp_path):
    # given
    write(
        tmp_path / "movies.csv",
        [
            "movieId,title,genres",
            "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
            '11,"American President, The (1995)",Comedy|Drama|Romance',
            "114335,La cravate (1957),(no genres listed)",
        ],
    )
    write(
        tmp_path / "ratings.csv",
        ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,11,3.5,964981247", "2,114335,5.0,1445714994"],
    )

    # when
    output = run("import_movielens", tmp_path)

    # then
    assert counts() == (3, 2, 3)
    assert "ml-latest layout" in output
    president = Item.objects.get(external_id="11")
    assert president.title == "American President, The (1995)"
    assert president.categories == ["Comedy", "Drama", "Romance"]
    assert Item.objects.get(external_id="114335").categories == []
    rating = Interaction.objects.get(event_id="ml-latest:1:11:964981247")
    assert rating.value == 3.5


def test_import_movielens_loads_an_ml_1m_folder(tmp_path):
    # given
    write(
        tmp_path / "movies.dat",
        ["1::Toy Story (1995)::Animation|Children's|Comedy", "2::Jumanji (1995)::Adventure|Children's|Fantasy"],
        encoding="latin-1",
    )
    write(tmp_path / "users.dat", ["1::F::1::10::48067", "2::M::56::16::70072"])
    write(tmp_path / "ratings.dat", ["1::1::5::978300760", "2::2::3::978298413", "2::1::4::978299000"])

    # when
    run("import_movielens", tmp_path)

    # then
    assert counts() == (2, 2, 3)
    assert Item.objects.get(external_id="2").categories == ["Adventure", "Children's", "Fantasy"]
    assert EndUser.objects.get(external_id="1").attributes == {
        "gender": "F",
        "age_group": "Under 18",
        "occupation": "K-12 student",
        "zip_code": "48067",
    }
    assert Interaction.objects.get(event_id="ml-1m:2:2:978298413").value == 3.0


def test_import_movielens_refuses_a_folder_without_a_known_layout(tmp_path):
    # given
    write(tmp_path / "notes.txt", ["not a dataset"])

    # when / then
    with pytest.raises(CommandError, match=r"no MovieLens layout.*u\.data.*ratings\.dat.*ratings\.csv"):
        run("import_movielens", tmp_path)


def test_import_movielens_with_a_bad_rating_writes_nothing(ml_100k):
    # given
    with (ml_100k / "u.data").open("a") as ratings:
        ratings.write("2\t2\tfive\t888551300\n")

    # when / then
    assert_refused_writing_nothing(r"u\.data line 5: rating 'five' is not a number", "import_movielens", ml_100k)


# import_interactions ---------------------------------------------------------------------------------------------


def test_import_interactions_maps_csv_columns_and_reads_unix_and_iso_times(tmp_path):
    # given
    events = write(
        tmp_path / "events.csv",
        [
            "customer,product,rating,when,action",
            "alice,sku-1,4.5,2024-03-01T12:00:00,purchase",
            "bob,sku-2,3,1709294400,view",
            "alice,sku-2,1,2024-03-01T13:00:00+01:00,click",
        ],
    )
    mapping = ["--user-column", "customer", "--item-column", "product", "--value-column", "rating"]
    mapping += ["--timestamp-column", "when", "--kind-column", "action"]

    # when
    output = run("import_interactions", events, *mapping)

    # then
    assert counts() == (2, 2, 3)
    assert "3 created, 0 duplicates" in output
    noon = datetime(2024, 3, 1, 12, tzinfo=UTC)
    stored = Interaction.objects.order_by("id")
    assert [(event.user.external_id, event.kind, event.value, event.occurred_at) for event in stored] == [
        ("alice", "purchase", 4.5, noon),
        ("bob", "view", 3.0, noon),
        ("alice", "click", 1.0, noon),
    ]
    assert all(event.event_id.startswith("sha1:") for event in stored)


def test_import_interactions_twice_adds_nothing(tmp_path):
    # given
    events = write(tmp_path / "events.csv", ["user,item,timestamp", "alice,sku-1,1709294400", "bob,sku-1,1709294500"])
    run("import_interactions", events)

    # when
    output = run("import_interactions", events)

    # then
    assert counts() == (1, 2, 2)
    assert "0 created, 2 duplicates" in output


def test_import_interactions_same_event_as_unix_and_iso_time_is_stored_once(tmp_path):
    # given
    run("import_interactions", write(tmp_path / "unix.csv", ["user,item,timestamp", "alice,sku-1,1709294400"]))

    # when
    run(
        "import_interactions", write(tmp_path / "iso.tsv", ["user\titem\ttimestamp", "alice\tsku-1\t2024-03-01T12:00Z"])
    )

    # then
    assert Interaction.objects.count() == 1


def test_import_interactions_reads_json_lines_with_event_ids(tmp_path):
    # given
    events = write(
        tmp_path / "events.jsonl",
        [
            '{"id": "e-1", "user": "u1", "item": "i1", "timestamp": 1709294400, "value": 0.5}',
            "",
            '{"id": "e-2", "user": 42, "item": "i2", "timestamp": "2024-03-01T12:00:00Z"}',
        ],
    )

    # when
    run("import_interactions", events, "--event-id-column", "id", "--kind", "play")

    # then
    stored = {event.event_id: event for event in Interaction.objects.select_related("user")}
    assert set(stored) == {"e-1", "e-2"}
    assert (stored["e-1"].kind, stored["e-1"].value) == ("play", 0.5)
    assert (stored["e-2"].user.external_id, stored["e-2"].value) == ("42", 1.0)
    assert stored["e-2"].occurred_at == datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_import_interactions_with_a_malformed_line_names_it_and_writes_nothing(tmp_path):
    # given
    events = write(
        tmp_path / "events.csv",
        [
            "user,item,value,timestamp",
            "alice,sku-1,1,1709294400",
            "bob,sku-2,abc,1709294400",
            "carol,sku-3,2,1709294400",
        ],
    )

    # when / then
    assert_refused_writing_nothing(r"^line 3: value 'abc' is not a number", "import_interactions", events)


def test_import_interactions_with_invalid_json_names_the_line(tmp_path):
    # given
    events = write(
        tmp_path / "events.ndjson",
        ['{"user": "u1", "item": "i1", "timestamp": 1709294400}', '{"user": "u2", "item": '],
    )

    # when / then
    assert_refused_writing_nothing(r"^line 2: invalid JSON", "import_interactions", events)


def test_import_interactions_names_numbers_beyond_range_as_bad_lines(tmp_path):
    # given
    events = write(
        tmp_path / "events.jsonl",
        [
            '{"user": "u1", "item": "i1", "timestamp": 1709294400, "value": 2}',
            '{"user": "u2", "item": "i2", "timestamp": 1709294400, "value": 1' + "0" * 400 + "}",
            '{"user": "u3", "item": "i3", "timestamp": 1709294400, "value": 1e400}',
            '{"user": "u4", "item": "i4", "timestamp": 1709294400, "value": NaN}',
            '{"user": "u5", "item": "i5", "timestamp": 1' + "0" * 400 + "}",
            '{"user": "u6", "item": "i6", "timestamp": 1709294400, "value": 1' + "0" * 5000 + "}",
            '{"user": "u7", "item": "i7", "timestamp": 1709294400, "value": ' + "[" * 5000 + "]" * 5000 + "}",
        ],
    )

    # when
    output = run("import_interactions", events, "--skip-invalid")

    # then
    assert list(Interaction.objects.values_list("user__external_id", "value")) == [("u1", 2.0)]
    assert "skipped 6 invalid lines" in output
    assert "not a number: 3 (lines 2, 3, 4;" in output
    assert "invalid timestamp: 1 (lines 5;" in output
    assert "invalid JSON: 2 (lines 6, 7;" in output


def test_import_interactions_skip_invalid_imports_the_good_lines_and_reports_the_rest(tmp_path):
    # given
    events = write(
        tmp_path / "events.csv",
        [
            "user,item,value,timestamp,kind",
            "alice,sku-1,1,1709294400,view",
            "bob,sku-2,abc,1709294400,view",
            "carol,sku-3,1,yesterday,view",
            "dave,sku-4,1,1709294400,Add To Cart",
            "erin,sku-5,1,1709294400",
            ",sku-6,1,1709294400,view",
            "frank,sku-7,2,2024-03-01,purchase",
            "gina,sku-8,xyz,1709294400,view",
        ],
    )

    # when
    output = run("import_interactions", events, "--kind-column", "kind", "--skip-invalid")

    # then
    assert sorted(Interaction.objects.values_list("user__external_id", flat=True)) == ["alice", "frank"]
    assert "skipped 6 invalid lines" in output
    assert "not a number: 2 (lines 3, 9; e.g. value 'abc' is not a number)" in output
    assert "invalid timestamp: 1 (lines 4;" in output
    assert "invalid kind: 1 (lines 5;" in output
    assert "wrong column count: 1 (lines 6;" in output
    assert "empty id: 1 (lines 7;" in output


def test_import_interactions_no_create_missing_rejects_an_unknown_item_and_writes_nothing(tmp_path, monkeypatch):
    # given one event per chunk, so the first event is written before the unknown item is found
    monkeypatch.setattr(imports, "CHUNK_SIZE", 1)
    EndUser.objects.create(external_id="alice")
    Item.objects.create(external_id="sku-1")
    events = write(
        tmp_path / "events.csv", ["user,item,timestamp", "alice,sku-1,1709294400", "alice,sku-404,1709294400"]
    )

    # when / then
    with pytest.raises(CommandError, match=r"^line 3: unknown item 'sku-404'"):
        run("import_interactions", events, "--no-create-missing")
    assert counts() == (1, 1, 0)


def test_import_interactions_no_create_missing_with_skip_invalid_imports_the_known_ones(tmp_path):
    # given
    EndUser.objects.create(external_id="alice")
    Item.objects.create(external_id="sku-1")
    events = write(
        tmp_path / "events.csv", ["user,item,timestamp", "alice,sku-404,1709294400", "alice,sku-1,1709294400"]
    )

    # when
    output = run("import_interactions", events, "--no-create-missing", "--skip-invalid")

    # then
    assert counts() == (1, 1, 1)
    assert "unknown item: 1 (lines 2;" in output


# import_items ----------------------------------------------------------------------------------------------------


def test_import_items_creates_then_updates_by_id(tmp_path):
    # given
    first = write(
        tmp_path / "items.csv",
        ["id,title,description,categories", "sku-1,Red shoe,Leather,shoes|red", 'sku-2,"Blue hat, wool",,hats'],
    )
    run("import_items", first)
    second = write(
        tmp_path / "items-v2.csv", ["id,title,description,categories", "sku-1,Red shoe (2025),Leather,shoes|red"]
    )

    # when
    output = run("import_items", second)

    # then
    assert Item.objects.count() == 2
    assert Item.objects.get(external_id="sku-1").title == "Red shoe (2025)"
    assert Item.objects.get(external_id="sku-2").title == "Blue hat, wool"
    assert Item.objects.get(external_id="sku-2").categories == ["hats"]
    assert "items:  0 created, 1 updated" in output


def test_import_items_maps_json_lines_fields_with_category_lists(tmp_path):
    # given
    items = write(tmp_path / "items.jsonl", ['{"sku": "b-1", "name": "Dune", "tags": ["sci-fi", "classic"]}'])

    # when
    run("import_items", items, "--id-column", "sku", "--title-column", "name", "--categories-column", "tags")

    # then
    dune = Item.objects.get(external_id="b-1")
    assert (dune.title, dune.categories) == ("Dune", ["sci-fi", "classic"])


# Files without hand work: header-less files, missing times, id prefixes, a fixed category, compression ------------


def test_import_interactions_reads_a_file_without_a_header_by_column_names(tmp_path):
    # given: ml-100k's u.data style, tab-separated with no header line
    events = write(tmp_path / "ratings.tsv", ["alice\tsku-1\t4\t1709294400", "bob\tsku-2\t2\t1709294500"])

    # when
    run("import_interactions", events, "--columns", "user,item,rating,timestamp", "--value-column", "rating")

    # then
    assert counts() == (2, 2, 2)
    bob = Interaction.objects.get(user__external_id="bob")
    assert (bob.item.external_id, bob.value, bob.occurred_at) == (
        "sku-2",
        2.0,
        datetime(2024, 3, 1, 12, 1, 40, tzinfo=UTC),
    )


def test_import_interactions_refuses_a_column_list_of_the_wrong_width(tmp_path):
    events = write(tmp_path / "ratings.csv", ["alice,sku-1,4"])

    options = ["--columns", "user,item", "--timestamp", "row-order"]
    assert_refused_writing_nothing("line 1: expected 2 columns, found 3", "import_interactions", events, *options)


def test_import_interactions_without_times_takes_the_row_order(tmp_path):
    # given: the same user and item twice, with no time to tell the two events apart but their order
    events = write(tmp_path / "plays.csv", ["user,item", "alice,song-1", "alice,song-2", "alice,song-1"])

    # when
    run("import_interactions", events, "--timestamp", "row-order")

    # then
    stored = Interaction.objects.order_by("occurred_at")
    assert [event.item.external_id for event in stored] == ["song-1", "song-2", "song-1"]
    assert len({event.occurred_at for event in stored}) == 3
    assert run("import_interactions", events, "--timestamp", "row-order").count("0 created, 3 duplicates") == 1


def test_import_interactions_without_times_can_take_one_fixed_time(tmp_path):
    events = write(tmp_path / "plays.csv", ["user,item", "alice,song-1", "bob,song-2"])

    run("import_interactions", events, "--timestamp", "2024-01-01T00:00:00Z")

    assert set(Interaction.objects.values_list("occurred_at", flat=True)) == {datetime(2024, 1, 1, tzinfo=UTC)}


@pytest.mark.parametrize("value", ["yesterday", ""])
def test_import_interactions_refuses_a_bad_fixed_time(tmp_path, value):
    events = write(tmp_path / "plays.csv", ["user,item", "alice,song-1"])

    assert_refused_writing_nothing("--timestamp", "import_interactions", events, "--timestamp", value)


def test_import_interactions_id_prefix_keeps_two_datasets_apart(tmp_path):
    # given
    events = write(tmp_path / "events.csv", ["user,item,timestamp,id", "1,1,1709294400,e1"])

    # when
    run("import_interactions", events, "--event-id-column", "id", "--id-prefix", "shop:")
    run("import_interactions", events, "--event-id-column", "id", "--id-prefix", "books:")

    # then
    assert set(EndUser.objects.values_list("external_id", flat=True)) == {"shop:1", "books:1"}
    assert set(Item.objects.values_list("external_id", flat=True)) == {"shop:1", "books:1"}
    assert set(Interaction.objects.values_list("event_id", flat=True)) == {"shop:e1", "books:e1"}


def test_import_items_id_prefix_and_fixed_category(tmp_path):
    # given
    items = write(tmp_path / "items.csv", ["id,title,categories", "1,Dune,sci-fi", "2,Emma,"])

    # when
    output = run("import_items", items, "--id-prefix", "books:", "--category", "books")

    # then
    assert "items:  2 created" in output
    assert Item.objects.get(external_id="books:1").categories == ["sci-fi", "books"]
    assert Item.objects.get(external_id="books:2").categories == ["books"]


def test_import_interactions_fixed_category_reaches_every_item_it_names(tmp_path):
    # given: one item stored already, one new
    Item.objects.create(external_id="sku-1", categories=["shoes"])
    events = write(tmp_path / "events.csv", ["user,item,timestamp", "alice,sku-1,1709294400", "bob,sku-2,1709294400"])

    # when
    run("import_interactions", events, "--category", "shop")

    # then
    assert Item.objects.get(external_id="sku-1").categories == ["shoes", "shop"]
    assert Item.objects.get(external_id="sku-2").categories == ["shop"]
    assert Interaction.objects.count() == 2


def test_an_id_prefix_that_makes_an_id_too_long_is_a_bad_line(tmp_path):
    events = write(tmp_path / "events.csv", ["user,item,timestamp", f"{'u' * 250},sku-1,1709294400"])

    assert_refused_writing_nothing("longer than 255", "import_interactions", events, "--id-prefix", "shop-0001:")


def _compress(path: Path, suffix: str) -> Path:
    import bz2
    import gzip
    import zipfile

    target = path.with_name(path.name + suffix)
    if suffix == ".gz":
        target.write_bytes(gzip.compress(path.read_bytes()))
    elif suffix == ".bz2":
        target.write_bytes(bz2.compress(path.read_bytes()))
    else:
        with zipfile.ZipFile(target, "w") as archive:
            archive.write(path, path.name)
    path.unlink()
    return target


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zip"])
@pytest.mark.parametrize("name", ["events.csv", "events.jsonl"])
def test_import_interactions_reads_compressed_files(tmp_path, suffix, name):
    # given
    lines = (
        ["user,item,timestamp", "alice,sku-1,1709294400", "bob,sku-2,1709294500"]
        if name.endswith(".csv")
        else [
            '{"user": "alice", "item": "sku-1", "timestamp": 1709294400}',
            '{"user": "bob", "item": "sku-2", "timestamp": 1}',
        ]
    )
    events = _compress(write(tmp_path / name, lines), suffix)

    # when
    run("import_interactions", events)

    # then
    assert counts() == (2, 2, 2)


def test_import_items_reads_a_gzipped_file(tmp_path):
    items = _compress(write(tmp_path / "items.tsv", ["id\ttitle", "sku-1\tRed shoe"]), ".gz")

    run("import_items", items)

    assert Item.objects.get(external_id="sku-1").title == "Red shoe"


def test_a_corrupt_compressed_file_is_refused_and_nothing_is_written(tmp_path):
    broken = tmp_path / "events.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 certainly not gzip")

    assert_refused_writing_nothing(r"events\.csv\.gz", "import_interactions", broken)


def test_a_zip_with_several_files_is_refused_naming_them(tmp_path):
    import zipfile

    archive = tmp_path / "events.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.csv", "user,item,timestamp\n")
        zipped.writestr("b.csv", "user,item,timestamp\n")

    with pytest.raises(CommandError, match=r"a\.csv.*b\.csv"):
        run("import_interactions", archive)


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_import_movielens_reads_compressed_ratings(tmp_path, suffix):
    # given: ml-1m with its ratings compressed
    write(tmp_path / "movies.dat", ["1::Toy Story (1995)::Animation"], encoding="latin-1")
    _compress(write(tmp_path / "ratings.dat", ["1::1::5::978300760", "2::1::3::978298413"]), suffix)

    # when
    run("import_movielens", tmp_path)

    # then
    assert counts() == (1, 2, 2)
    assert Interaction.objects.filter(event_id="ml-1m:2:1:978298413").exists()
