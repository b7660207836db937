"""Probabilistic matching: FEBRL3 figures, generated people with known truth, the edges."""

from __future__ import annotations

import math
import random
import string
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from bench.match_febrl import components, evaluate, load_febrl3, pairs_within, score
from patron.exceptions import ConfigError, PatronError
from patron.identity.exceptions import InvalidMatchInput, MatchingUnavailable
from patron.identity.matching import (
    MATCH,
    PAIR_SCHEMA,
    REVIEW,
    MatchResult,
    MatchSettings,
    ProbabilisticMatcher,
)
from patron.identity.matching_input import prepare_records
from patron.store.duckdb import DuckDBStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore.open(tmp_path / "match.duckdb")
    yield store
    store.close()


@pytest.fixture(scope="module")
def febrl3(tmp_path_factory: pytest.TempPathFactory) -> tuple[MatchResult, set[tuple[str, str]], float]:
    records, truth = load_febrl3()
    store = DuckDBStore.open(tmp_path_factory.mktemp("febrl") / "febrl.duckdb")
    started = time.perf_counter()
    result = ProbabilisticMatcher(store).match(records, on=["soc_sec_id"])
    elapsed = time.perf_counter() - started
    store.close()
    return result, truth, elapsed


# -- FEBRL3 ------------------------------------------------------------------------


def test_febrl3_pairs_and_clusters_reach_099(febrl3: tuple[MatchResult, set[tuple[str, str]], float]) -> None:
    result, truth, elapsed = febrl3
    threshold = MatchSettings().match_threshold
    pairs, clusters = evaluate(result.pairs, truth, threshold)
    # The figures, for docs and for whoever reads the test log (pytest -s or -rA).
    sys.stdout.write(
        f"\nFEBRL3 (5,000 records, {len(truth)} true pairs), match threshold {threshold}, "
        f"{elapsed:.1f} s:\n  pairs    {pairs}\n  clusters {clusters}\n"
    )
    assert len(truth) == 6538
    assert pairs.precision >= 0.99 and pairs.recall >= 0.99, pairs
    assert clusters.precision >= 0.99 and clusters.recall >= 0.99, clusters


def test_febrl3_result_shape(febrl3: tuple[MatchResult, set[tuple[str, str]], float]) -> None:
    result, _, _ = febrl3
    pairs = result.pairs
    assert pairs.schema == PAIR_SCHEMA
    left, right = pairs["record_id_l"].to_pylist(), pairs["record_id_r"].to_pylist()
    assert all(a < b for a, b in zip(left, right, strict=True))
    assert list(zip(left, right, strict=True)) == sorted(zip(left, right, strict=True))
    settings = MatchSettings()
    prior = result.model["probability_two_random_records_match"]
    prior_weight = math.log2(prior / (1 - prior))
    for row in pairs.to_pylist():
        assert row["match_probability"] >= settings.review_threshold
        expected = MATCH if row["match_probability"] >= settings.match_threshold else REVIEW
        assert row["decision"] == expected
        # The explanation: one weight per comparison; with the prior they make the total.
        weights = dict(row["weights"])
        assert set(weights) == {"name", "birthday", "address", "soc_sec_id"}
        assert sum(weights.values()) + prior_weight == pytest.approx(row["match_weight"], abs=1e-4)
    assert result.matches.num_rows + result.reviews.num_rows == pairs.num_rows
    assert result.reviews.num_rows > 0
    assert set(result.traits) >= {"firstName", "lastName", "birthday", "soc_sec_id"}
    assert result.model["comparisons"]


def test_same_records_give_the_same_pairs(store: DuckDBStore) -> None:
    records, _ = load_febrl3()
    sample = records.slice(0, 1500)
    first = ProbabilisticMatcher(store).match(sample, on=["soc_sec_id"]).pairs
    again = ProbabilisticMatcher(store).match(sample, on=["soc_sec_id"]).pairs
    assert first.num_rows > 100
    assert first.equals(again)


# -- generated people with known truth ---------------------------------------------

FIRST = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
    "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen",
    "olivia", "noah", "amelia", "oliver", "isla", "jack", "ava", "leo", "mia", "harry", "grace", "oscar",
]
LAST = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
    "wilson", "anderson", "taylor", "thomas", "moore", "jackson", "martin", "lee", "thompson", "white",
    "harris", "clark", "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "green",
]
STREETS = ["high street", "station road", "church lane", "park avenue", "mill road", "victoria street", "the crescent"]
#: postcode -> (city, state): a postcode implies its city and state (correlated fields).
PLACES = {f"{2000 + i * 7}": (city, state) for i, (city, state) in enumerate(
    [(c, s) for s in ("nsw", "vic", "qld") for c in ("springfield", "riverside", "fairview", "kingston", "oakdale")]
)}


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text))
    kind = rng.choice(("substitute", "drop", "transpose"))
    if kind == "substitute":
        return text[:i] + rng.choice(string.ascii_lowercase) + text[i + 1 :]
    if kind == "drop" and len(text) > 3:
        return text[:i] + text[i + 1 :]
    i = min(i, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _person(rng: random.Random, n: int) -> dict[str, str | None]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    postcode = rng.choice(list(PLACES))
    city, state = PLACES[postcode]
    return {
        "firstName": first,
        "lastName": last,
        "birthday": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "email": f"{first}.{last}{n}@example.com",
        "phone": f"+61 4{rng.randint(10_000_000, 99_999_999)}",
        "address.street": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
        "address.city": city,
        "address.postalCode": postcode,
        "address.state": state,
    }


def _duplicate(rng: random.Random, person: dict[str, str | None]) -> dict[str, str | None]:
    dup = dict(person)
    for _ in range(rng.randint(1, 3)):
        change = rng.choice(("name typo", "missing", "moved", "new email", "swapped", "date typo"))
        if change == "name typo":
            key = rng.choice(("firstName", "lastName"))
            dup[key] = _typo(rng, str(dup[key]))
        elif change == "missing":
            dup[rng.choice(("email", "phone", "birthday", "address.street"))] = None
        elif change == "moved":
            postcode = rng.choice(list(PLACES))
            city, state = PLACES[postcode]
            street = f"{rng.randint(1, 200)} {rng.choice(STREETS)}"
            dup.update({"address.street": street, "address.city": city, "address.postalCode": postcode, "address.state": state})
        elif change == "new email":
            dup["email"] = f"{dup['firstName']}{rng.randint(1, 99)}@mail.example.org"
        elif change == "swapped":
            dup["firstName"], dup["lastName"] = dup["lastName"], dup["firstName"]
        elif dup["birthday"]:
            birthday = str(dup["birthday"])
            dup["birthday"] = birthday[:-1] + str((int(birthday[-1]) + 1) % 10)
    return dup


def _generated(people: int, seed: int = 7) -> tuple[pa.Table, set[tuple[str, str]]]:
    rng = random.Random(seed)
    rows: list[dict[str, str | None]] = []
    groups: list[list[str]] = []
    for n in range(people):
        person = _person(rng, n)
        ids = [f"p{n}-0"]
        rows.append({"record_id": ids[0], **person})
        if rng.random() < 0.3:
            ids.append(f"p{n}-1")
            rows.append({"record_id": ids[1], **_duplicate(rng, person)})
        groups.append(ids)
    return pa.Table.from_pylist(rows), pairs_within(groups)


def test_generated_people_with_typos_moves_and_gaps(store: DuckDBStore) -> None:
    records, truth = _generated(3000)
    result = ProbabilisticMatcher(store).match(records)
    matched = {(r["record_id_l"], r["record_id_r"]) for r in result.matches.to_pylist()}
    pairs = score(matched, truth)
    clusters = score(pairs_within(components(matched)), truth)
    sys.stdout.write(f"\ngenerated ({records.num_rows} records, {len(truth)} true pairs):\n  pairs    {pairs}\n  clusters {clusters}\n")
    assert pairs.precision >= 0.98 and pairs.recall >= 0.9, pairs
    assert clusters.precision >= 0.98, clusters


def test_it_tells_people_apart_and_forgives_typos(store: DuckDBStore) -> None:
    records, _ = _generated(1500)
    rows = records.to_pylist()
    base = {k: None for k in records.column_names}
    # Two people who share only a surname and a town (so postcode and state too).
    rows.append({**base, "record_id": "x-ann", "firstName": "annabel", "lastName": "smith", "birthday": "1961-03-04",
                 "email": "annabel.s@example.net", "address.street": "4 quarry hill", "address.city": "springfield",
                 "address.postalCode": "2000", "address.state": "nsw"})
    rows.append({**base, "record_id": "x-bob", "firstName": "bartholomew", "lastName": "smith", "birthday": "1990-11-20",
                 "email": "bart@example.org", "address.street": "77 long gully road", "address.city": "springfield",
                 "address.postalCode": "2000", "address.state": "nsw"})
    # One person twice: a typo in the first name, the same birthday and email, moved house.
    rows.append({**base, "record_id": "x-kat-1", "firstName": "katherine", "lastName": "zielinski",
                 "birthday": "1984-07-19", "email": "kz84@example.com", "address.street": "9 ferry lane",
                 "address.city": "kingston", "address.postalCode": "2021", "address.state": "nsw"})
    rows.append({**base, "record_id": "x-kat-2", "firstName": "katherien", "lastName": "zielinski",
                 "birthday": "1984-07-19", "email": "KZ84@example.com ", "address.street": "310 marine parade",
                 "address.city": "oakdale", "address.postalCode": "2049", "address.state": "vic"})
    # A parent and child at one address, with one surname: two people.
    rows.append({**base, "record_id": "x-dad", "firstName": "gregor", "lastName": "novak", "birthday": "1950-01-02",
                 "address.street": "12 elm court", "address.city": "riverside", "address.postalCode": "2007",
                 "address.state": "nsw", "phone": "+61 400 000 111"})
    rows.append({**base, "record_id": "x-son", "firstName": "tomas", "lastName": "novak", "birthday": "1982-05-30",
                 "address.street": "12 elm court", "address.city": "riverside", "address.postalCode": "2007",
                 "address.state": "nsw", "phone": "+61 400 000 222"})
    result = ProbabilisticMatcher(store).match(pa.Table.from_pylist(rows, schema=records.schema))
    found = {(r["record_id_l"], r["record_id_r"]): r for r in result.pairs.to_pylist()}
    assert ("x-ann", "x-bob") not in found
    assert ("x-dad", "x-son") not in found or found[("x-dad", "x-son")]["decision"] == REVIEW
    kat = found[("x-kat-1", "x-kat-2")]
    assert kat["decision"] == MATCH, kat
    weights = dict(kat["weights"])
    assert weights["email"] > 0 and weights["birthday"] > 0 and weights["address"] < 0


# -- input and settings ------------------------------------------------------------


def test_records_are_cleaned_before_comparison() -> None:
    table = pa.table(
        {
            "record_id": [1, 2, 3],
            "firstName": ["  Ann ", "ann", ""],
            "birthday": ["19800131", "1980-02-31", "1980/01/31T10:00:00"],
            "email": ["Ann@Shop.COM ", "null", None],
            "phone": ["+1 (415) 555-2671", "0", "12"],
            "address.postalCode": ["SW1A 1AA", "sw1a1aa", None],
            "national_id": [" AB12 ", "n/a", "ab12"],
        }
    )
    prepared = prepare_records(table, on=["national_id"])
    got = prepared.table.to_pydict()
    assert got["record_id"] == ["1", "2", "3"]
    assert got["first_name"] == ["ann", "ann", None]
    assert got["birthday"] == ["1980-01-31", None, "1980-01-31"]
    assert got["email"] == ["ann@shop.com", None, None]
    assert got["phone"] == ["14155552671", None, None]
    assert got["postcode"] == ["sw1a1aa", "sw1a1aa", None]
    assert got["custom_0"] == ["AB12", None, "ab12"]
    assert prepared.columns == {
        "first_name": "firstName",
        "birthday": "birthday",
        "postcode": "address.postalCode",
        "custom_0": "national_id",
    }


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidMatchInput, match="record_id"):
        prepare_records(pa.table({"firstName": ["a"]}))
    with pytest.raises(InvalidMatchInput, match="repeat"):
        prepare_records(pa.table({"record_id": ["a", "a"], "firstName": ["x", "y"]}))
    with pytest.raises(InvalidMatchInput, match="national_id"):
        prepare_records(pa.table({"record_id": ["a", "b"], "firstName": ["x", "y"]}), on=["national_id"])
    with pytest.raises(InvalidMatchInput, match="no trait to compare"):
        prepare_records(pa.table({"record_id": ["a", "b"], "shoe_size": ["9", "9"]}))
    assert issubclass(InvalidMatchInput, PatronError) and issubclass(InvalidMatchInput, ValueError)


def test_thresholds_are_checked() -> None:
    with pytest.raises(ConfigError, match="review threshold"):
        MatchSettings(match_threshold=0.5, review_threshold=0.9)
    with pytest.raises(ConfigError, match="probability"):
        MatchSettings(match_threshold=1.5)


def test_missing_splink_prints_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.identity import splink_library

    monkeypatch.setitem(sys.modules, "splink", None)  # import splink now raises ImportError
    with pytest.raises(MatchingUnavailable, match=r'pip install "patron\[match\]"'):
        splink_library.load_splink()


def test_working_tables_stay_out_of_the_store(store: DuckDBStore) -> None:
    records, _ = _generated(200)
    ProbabilisticMatcher(store).match(records)
    tables = store._query("SELECT table_catalog, table_name FROM information_schema.tables")
    assert not [t for t in tables if "splink" in t[1]]
    assert not [t for t in tables if t[0].startswith("patron_match")]
    assert {t[1] for t in tables} >= {"events", "meta"}


@pytest.mark.parametrize(
    "columns",
    [
        ["lastName", "address.city", "email"],
        ["firstName", "lastName"],
        ["lastName", "address.city"],
        ["email", "phone", "birthday"],
    ],
)
def test_any_subset_of_traits_is_matched(store: DuckDBStore, columns: list[str]) -> None:
    records, truth = _generated(400, seed=3)
    subset = records.select(["record_id", *columns])
    result = ProbabilisticMatcher(store).match(subset)
    assert result.pairs.schema == PAIR_SCHEMA
    assert set(result.traits) == set(columns)
    matched = {(r["record_id_l"], r["record_id_r"]) for r in result.matches.to_pylist()}
    if "email" in columns:
        assert matched & truth


def test_a_custom_id_alone_is_enough(store: DuckDBStore) -> None:
    records = pa.table({"record_id": ["a", "b", "c", "d"], "national_id": ["X1", "X1", "Y2", "Z3"]})
    result = ProbabilisticMatcher(store).match(records, on=["national_id"])
    assert result.traits == ("national_id",)
    assert [(r["record_id_l"], r["record_id_r"]) for r in result.matches.to_pylist()] == [("a", "b")]
