"""Probabilistic matching at scale on generated people with known truth.

    .venv/bin/python -m bench.match_generated --records 1000000

About 10% of the records are duplicates of another with realistic corruption: typos in
names, missing fields, moves (a whole new, consistent address), new emails, swapped
first and last names, a digit wrong in the birthday. Names are drawn from Zipf-like
pools (common names are common), postcodes imply their city and state, so the address
fields are correlated as in real data. Prints time, peak memory and pairwise/cluster
precision and recall at several match thresholds; the matching runs in a fresh process
that reads the records from Parquet, so its peak memory is the matcher's own.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.match_febrl import evaluate, pairs_within

_SYLLABLES = ["an", "ba", "ca", "de", "el", "fi", "ga", "ha", "in", "jo", "ka", "li", "ma", "ne", "or",
              "pa", "ri", "sa", "ta", "ul", "va", "wi", "ya", "zo", "mer", "son", "ton", "ley", "ric", "din"]


def _names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(names)


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 2:
        return text
    i = rng.randrange(len(text) - 1)
    kind = rng.random()
    if kind < 0.4:
        return text[:i] + rng.choice(string.ascii_lowercase) + text[i + 1 :]
    if kind < 0.7:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def generate(records: int, duplicate_share: float = 0.1, seed: int = 1) -> tuple[pa.Table, set[tuple[str, str]]]:
    """``records`` person records, about ``duplicate_share`` of them duplicates, and the true pairs."""
    rng = random.Random(seed)
    first, last, streets = _names(rng, 3000), _names(rng, 20000), _names(rng, 5000)
    # Zipf-like: the commonest first name is about 3% of people, the commonest surname
    # about 3% (in the US, James is about 1.6% of men and Smith about 0.8% of people).
    first_w = [1 / (i + 1) ** 0.75 for i in range(len(first))]
    last_w = [1 / (i + 1) ** 0.8 for i in range(len(last))]
    places = {f"{1000 + i}": (f"{_names(rng, 1)[0]}ville", rng.choice(["nsw", "vic", "qld", "wa", "sa", "tas"]))
              for i in range(3000)}
    postcodes = list(places)
    people = int(records / (1 + duplicate_share))
    firsts = rng.choices(first, first_w, k=people)
    lasts = rng.choices(last, last_w, k=people)
    columns: dict[str, list[str | None]] = {k: [] for k in (
        "record_id", "firstName", "lastName", "birthday", "email", "phone",
        "address_street", "address_city", "address_postalCode", "address_state")}
    groups: list[list[str]] = []

    def add(row: dict[str, str | None]) -> None:
        for key, values in columns.items():
            values.append(row.get(key))

    def address() -> dict[str, str | None]:
        postcode = rng.choice(postcodes)
        city, state = places[postcode]
        return {"address_street": f"{rng.randint(1, 300)} {rng.choice(streets)} street", "address_city": city,
                "address_postalCode": postcode, "address_state": state}

    for n in range(people):
        person: dict[str, str | None] = {
            "record_id": f"p{n}",
            "firstName": firsts[n],
            "lastName": lasts[n],
            "birthday": f"{rng.randint(1935, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "email": f"{firsts[n]}.{lasts[n]}.{n}@example.com" if rng.random() < 0.7 else None,
            "phone": f"04{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.5 else None,
            **address(),
        }
        add(person)
        groups.append([f"p{n}"])
    for d in range(records - people):
        n = rng.randrange(people)
        dup = {key: values[n] for key, values in columns.items()}
        dup["record_id"] = f"p{n}-d{d}"
        for _ in range(rng.randint(1, 3)):
            change = rng.random()
            if change < 0.3:
                key = rng.choice(("firstName", "lastName"))
                dup[key] = _typo(rng, str(dup[key]))
            elif change < 0.5:
                dup[rng.choice(("email", "phone", "birthday", "address_street", "address_city"))] = None
            elif change < 0.65:
                dup.update(address())
            elif change < 0.8:
                # A second address of the same person: never another person's (before,
                # name + a number from 1 to 99 gave thousands of people the same address,
                # and the deterministic graph rightly joined them).
                dup["email"] = f"{dup['firstName']}.{dup['lastName']}{rng.randint(1, 99)}.{n}@mail.example.org"
            elif change < 0.9:
                dup["firstName"], dup["lastName"] = dup["lastName"], dup["firstName"]
            elif dup["birthday"]:
                b = str(dup["birthday"])
                dup["birthday"] = b[:-1] + str((int(b[-1]) + 1) % 10)
        add(dup)
        groups[n].append(str(dup["record_id"]))
    return pa.table(columns), pairs_within(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--match", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.match:
        _match(args.match)
        return
    started = time.perf_counter()
    records, truth = generate(args.records)
    print(f"generated {records.num_rows} records, {len(truth)} true pairs in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(records, Path(tmp) / "records.parquet")
        pq.write_table(pa.table({"a": [a for a, _ in truth], "b": [b for _, b in truth]}), Path(tmp) / "truth.parquet")
        del records, truth
        # A fresh process, so that its peak memory is the matcher's, not the generator's.
        subprocess.run([sys.executable, "-m", "bench.match_generated", "--match", tmp], check=True)


def _match(folder: Path) -> None:
    from patron.identity.matching import MatchSettings, ProbabilisticMatcher
    from patron.store.duckdb import DuckDBStore

    records = pq.read_table(folder / "records.parquet")
    pairs = pq.read_table(folder / "truth.parquet")
    truth = set(zip(pairs["a"].to_pylist(), pairs["b"].to_pylist(), strict=True))
    store = DuckDBStore.open(folder / "bench.duckdb")
    started = time.perf_counter()
    result = ProbabilisticMatcher(store, MatchSettings()).match(records)
    elapsed = time.perf_counter() - started
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"matched in {elapsed:.1f} s, peak memory {peak:,.0f} MiB; {result.reviews.num_rows} pairs for review")
    for threshold in (0.1, 0.5, 0.9, 0.99):
        pair_scores, cluster_scores = evaluate(result.pairs, truth, threshold)
        default = " (default)" if threshold == MatchSettings().match_threshold else ""
        print(f"threshold {threshold}{default}:\n  pairs    {pair_scores}\n  clusters {cluster_scores}")


if __name__ == "__main__":
    main()
