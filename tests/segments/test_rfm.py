"""RFM scores, the group map (checked cell by cell against docs/rfm.md) and the summary."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from patron.demo.cdnow import read_purchases
from patron.segments.rfm import (
    GROUPS,
    PROSPECTS,
    RFM_GRID,
    RfmCuts,
    group_expression,
    rfm_cuts,
    rfm_group_of,
    rfm_scores,
    rfm_summary,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rfm.md"
AS_OF = datetime(2024, 6, 1)
CELLS = list(itertools.product(range(1, 6), repeat=3))


class DuckDBStore:
    """The two methods of a store that RFM uses, on an in-memory DuckDB."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, expr: ir.Expr) -> Any:
        return self.con.execute(expr)

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)


@pytest.fixture
def con() -> Any:
    return ibis.duckdb.connect()


def computed_table(con: Any, rows: list[dict[str, Any]], name: str = "profile_computed") -> ir.Table:
    """A ``profile_computed`` with the columns RFM reads, typed as the build writes them."""
    schema = pa.schema(
        [
            ("profile_id", pa.string()),
            ("order_count", pa.int64()),
            ("total_revenue", pa.float64()),
            ("first_order_at", pa.timestamp("us")),
            ("last_order_at", pa.timestamp("us")),
        ]
    )
    full = [{"first_order_at": row.get("last_order_at"), **row} for row in rows]
    return con.create_table(name, pa.Table.from_pylist(full, schema=schema), overwrite=True)


def scores_by_id(con: Any, computed: ir.Table, as_of: datetime = AS_OF) -> dict[str, dict[str, Any]]:
    return {row["profile_id"]: row for row in con.to_pyarrow(rfm_scores(computed, as_of)).to_pylist()}


def purchaser(pid: str, days: float, orders: int, revenue: float | None) -> dict[str, Any]:
    return {"profile_id": pid, "order_count": orders, "total_revenue": revenue, "last_order_at": AS_OF - timedelta(days=days)}


# -- the map ---------------------------------------------------------------------------


def docs_grid() -> dict[tuple[int, int], str]:
    """The (R, FM) table of docs/rfm.md: the rows of the first table whose header is ``R \\ FM``."""
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*R \\ FM\s*\|", line))
    header = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    assert header[1:] == ["1", "2", "3", "4", "5"]
    grid = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        r, *groups = (c.strip() for c in line.strip().strip("|").split("|"))
        assert len(groups) == 5, line
        for fm, group in enumerate(groups, start=1):
            grid[(int(r), fm)] = group
    assert sorted(grid) == [(r, fm) for r in range(1, 6) for fm in range(1, 6)]
    return grid


def test_every_cell_has_the_group_the_docs_publish() -> None:
    grid = docs_grid()
    assert {(5 - i, fm): g for i, row in enumerate(RFM_GRID) for fm, g in enumerate(row, 1)} == grid
    for r, f, m in CELLS:
        fm = (f + m + 1) // 2  # the mean of F and M, rounded half up
        assert rfm_group_of(r, f, m) == grid[(r, fm)], (r, f, m)


def test_the_map_names_each_of_the_eleven_groups_and_nothing_else() -> None:
    assert len(GROUPS) == 11 and PROSPECTS not in GROUPS
    assert set(docs_grid().values()) == set(GROUPS)
    assert Counter(rfm_group_of(*cell) for cell in CELLS).keys() == set(GROUPS)
    for group in (*GROUPS, PROSPECTS):  # the docs give each one line of advice
        assert f"- **{group}**" in DOCS.read_text(), group


def test_fm_rounds_half_up() -> None:
    assert rfm_group_of(5, 1, 1) == "New Customers"  # FM 1
    assert rfm_group_of(5, 1, 2) == "Potential Loyalists"  # FM 1.5 -> 2
    assert rfm_group_of(5, 3, 4) == "Champions"  # FM 3.5 -> 4
    assert rfm_group_of(1, 4, 5) == "Can't Lose Them"  # FM 4.5 -> 5
    assert rfm_group_of(1, 1, 2) == "Hibernating"  # FM 2


@pytest.mark.parametrize("scores", [(0, 1, 1), (1, 6, 1), (1, 1, None), (2.0, 1, 1)])
def test_scores_outside_one_to_five_are_refused(scores: tuple[Any, Any, Any]) -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        rfm_group_of(*scores)


def test_the_ibis_group_column_agrees_with_rfm_group_of_on_every_cell(con: Any) -> None:
    cells = ibis.memtable(pa.table({k: [c[i] for c in CELLS] for i, k in enumerate("rfm")}))
    got = con.to_pyarrow(cells.select("r", "f", "m", group=group_expression(cells.r, cells.f, cells.m))).to_pylist()
    assert len(got) == 125
    for row in got:
        assert row["group"] == rfm_group_of(row["r"], row["f"], row["m"]), row


def test_a_profile_in_every_cell_scores_and_groups_as_intended(con: Any) -> None:
    # 125 purchasers, one per (r, f, m). Each score value is held by exactly 25 of them,
    # and within a dimension all values differ, so a profile whose value is the k-th
    # worst (0-based) scores 1 + floor(5k / 125) = 1 + k // 25: value bands of 25 give
    # the intended scores. Recency bands run the other way (fewer days is better).
    seen: Counter[tuple[str, int]] = Counter()
    rows = []
    for r, f, m in CELLS:
        k = {dim: seen[(dim, s)] for dim, s in (("r", r), ("f", f), ("m", m))}
        seen.update([("r", r), ("f", f), ("m", m)])
        rows.append(purchaser(f"p{r}{f}{m}", (5 - r) * 25 + (24 - k["r"]) + 1, (f - 1) * 25 + k["f"] + 1, (m - 1) * 25.0 + k["m"]))
    got = scores_by_id(con, computed_table(con, rows))
    for r, f, m in CELLS:
        row = got[f"p{r}{f}{m}"]
        assert (row["r_score"], row["f_score"], row["m_score"]) == (r, f, m)
        assert row["rfm_score"] == f"{r}{f}{m}"
        assert row["rfm_group"] == rfm_group_of(r, f, m)


# -- scoring ---------------------------------------------------------------------------


def test_quintiles_give_equal_values_equal_scores(con: Any) -> None:
    # Ten purchasers, and two prospects that must not count. score = 1 + floor(5 * worse / 10),
    # "worse" = purchasers with a strictly worse value:
    #
    #   frequency 1,1,1,1,1 -> worse 0 -> F 1;  2,2 -> worse 5 -> 1 + floor(2.5) = 3;
    #             3 -> worse 7 -> 4;  5 -> worse 8 -> 5;  8 -> worse 9 -> 1 + floor(4.5) = 5   (no F 2)
    #   days 365 -> worse 0 -> R 1;  200 -> 1 -> 1 + floor(0.5) = 1;  90,90,90 -> 2 -> 2;
    #        60 -> 5 -> 3;  40 -> 6 -> 4;  10,10 -> 7 -> 1 + floor(3.5) = 4;  3 -> 9 -> 5
    #   revenue None (= 0) -> 0 -> M 1;  15 -> 1 -> 1;  20,20 -> 2 -> 2;  35 -> 4 -> 3;
    #           50 -> 5 -> 1 + floor(2.5) = 3;  80 -> 6 -> 4;  120,120 -> 7 -> 4;  400 -> 9 -> 5
    customers = [  # id, days, orders, revenue, expected (R, F, M)
        ("c0", 365, 1, 15.0, (1, 1, 1)),
        ("c1", 200, 1, None, (1, 1, 1)),
        ("c2", 90, 1, 20.0, (2, 1, 2)),
        ("c3", 90, 2, 20.0, (2, 3, 2)),
        ("c4", 90, 1, 35.0, (2, 1, 3)),
        ("c5", 60, 2, 50.0, (3, 3, 3)),
        ("c6", 40, 1, 80.0, (4, 1, 4)),
        ("c7", 10, 3, 120.0, (4, 4, 4)),
        ("c8", 10, 5, 120.0, (4, 5, 4)),
        ("c9", 3, 8, 400.0, (5, 5, 5)),
    ]
    rows = [purchaser(pid, days, orders, revenue) for pid, days, orders, revenue, _ in customers]
    rows += [
        {"profile_id": "x0", "order_count": 0, "total_revenue": None, "last_order_at": None},
        {"profile_id": "x1", "order_count": None, "total_revenue": None, "last_order_at": None},
    ]
    got = scores_by_id(con, computed_table(con, rows))
    for pid, days, orders, revenue, expected in customers:
        row = got[pid]
        assert (row["r_score"], row["f_score"], row["m_score"]) == expected, pid
        assert row["recency_days"] == pytest.approx(days) and row["frequency"] == orders
        assert row["monetary"] == (revenue or 0.0)
        assert row["rfm_group"] == rfm_group_of(*expected)
    assert got["c0"]["rfm_group"] == "Lost" and got["c9"]["rfm_group"] == "Champions"
    assert got["c8"]["rfm_score"] == "454" and got["c8"]["rfm_group"] == "Loyal Customers"
    assert 2 not in {row["f_score"] for row in got.values()}


def _by_definition(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """Each purchaser's scores straight from the definition: 1 + floor(5 * worse / n)."""
    buyers = [r for r in rows if (r["order_count"] or 0) > 0]
    n = len(buyers)
    values = {
        "r": [b["last_order_at"] for b in buyers],
        "f": [b["order_count"] for b in buyers],
        "m": [b["total_revenue"] or 0.0 for b in buyers],
    }

    def score(dimension: str, value: Any) -> int:
        worse = sum(other < value for other in values[dimension])
        return 1 + (5 * worse) // n

    return {
        b["profile_id"]: (score("r", b["last_order_at"]), score("f", b["order_count"]), score("m", b["total_revenue"] or 0.0))
        for b in buyers
    }


def _random_customers(seed: int, count: int) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(count):
        if rng.random() < 0.15:
            rows.append({"profile_id": f"p{i}", "order_count": 0, "total_revenue": None, "last_order_at": None})
            continue
        # Few distinct values, so ties are everywhere; some revenue missing.
        revenue = None if rng.random() < 0.1 else float(rng.choice([5, 10, 10, 20, 35, 50, 120, 400]))
        rows.append(purchaser(f"p{i}", rng.choice([1, 3, 10, 10, 40, 90, 90, 200, 365]), rng.choice([1, 1, 1, 2, 2, 3, 5, 8]), revenue))
    return rows


@pytest.mark.parametrize(("seed", "count"), [(1, 7), (2, 23), (3, 101), (4, 250)])
def test_scores_from_cuts_equal_the_definition_on_tied_data(con: Any, seed: int, count: int) -> None:
    rows = _random_customers(seed, count)
    computed = computed_table(con, rows)
    expected = _by_definition(rows)
    got = scores_by_id(con, computed)
    assert {p: (r["r_score"], r["f_score"], r["m_score"]) for p, r in got.items() if p in expected} == expected
    # The same with the cuts taken first and a few rows scored against them.
    cuts = rfm_cuts(DuckDBStore(con), computed)
    assert cuts.purchasers == len(expected)
    few = computed.filter(computed.profile_id.isin([r["profile_id"] for r in rows[::3]]))
    some = {r["profile_id"]: r for r in con.to_pyarrow(rfm_scores(few, AS_OF, cuts)).to_pylist()}
    assert set(some) == {r["profile_id"] for r in rows[::3]}
    for pid, row in some.items():
        assert (row["r_score"], row["f_score"], row["m_score"]) == expected.get(pid, (None, None, None))
        assert row == got[pid]


def test_cuts_survive_json(con: Any) -> None:
    cuts = rfm_cuts(DuckDBStore(con), computed_table(con, _random_customers(5, 40)))
    assert RfmCuts.from_json(json.loads(json.dumps(cuts.as_json()))) == cuts
    empty = rfm_cuts(DuckDBStore(con), computed_table(con, [{"profile_id": "x", "order_count": 0,
                                                             "total_revenue": None, "last_order_at": None}]))  # fmt: skip
    assert empty == RfmCuts(0, (), (), ())
    assert RfmCuts.from_json(empty.as_json()) == empty


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_moved_finds_exactly_the_unchanged_profiles_whose_scores_changed(con: Any, seed: int) -> None:
    import random

    rng = random.Random(seed)
    before = _random_customers(seed, 120)
    after = [dict(r) for r in before]
    changed = set()
    for row in rng.sample(after, 15):  # new orders for some, new customers besides
        row.update(purchaser(row["profile_id"], rng.choice([0.5, 2, 5]), (row["order_count"] or 0) + 1,
                             (row["total_revenue"] or 0.0) + 30.0))  # fmt: skip
        changed.add(row["profile_id"])
    after += [purchaser(f"new{i}", 1, 9, 900.0) for i in range(6)]
    old_scores, new_scores = _by_definition(before), _by_definition(after)
    computed_before, computed_after = computed_table(con, before, "before"), computed_table(con, after, "after")
    cuts_before = rfm_cuts(DuckDBStore(con), computed_before)
    cuts_after = rfm_cuts(DuckDBStore(con), computed_after)
    assert cuts_before != cuts_after
    test = cuts_after.moved(cuts_before, computed_after)
    assert test is not None
    found = set(con.to_pyarrow(computed_after.filter(test).select("profile_id"))["profile_id"].to_pylist())
    really = {p for p in old_scores if p not in changed and old_scores[p] != new_scores[p]}
    assert really  # the six big new customers push others down
    # Exactly those (cuts are ordered, so a value no cut passed keeps every score; one
    # that a cut passed changes score, since no other cut can pass it the other way).
    assert found - changed == really
    assert cuts_after.moved(cuts_after, computed_after) is None


def test_profiles_without_orders_are_prospects_with_no_scores(con: Any) -> None:
    rows = [
        purchaser("buyer", 5, 1, 10.0),
        {"profile_id": "zero", "order_count": 0, "total_revenue": None, "last_order_at": None},
        {"profile_id": "null", "order_count": None, "total_revenue": None, "last_order_at": None},
    ]
    got = scores_by_id(con, computed_table(con, rows))
    assert got["buyer"]["rfm_score"] == "111"  # alone: nobody is worse
    for pid in ("zero", "null"):
        row = got[pid]
        assert row["rfm_group"] == PROSPECTS and row["frequency"] == 0
        assert all(row[c] is None for c in ("recency_days", "monetary", "r_score", "f_score", "m_score", "rfm_score"))


def test_recency_is_measured_to_as_of(con: Any) -> None:
    rows = [purchaser("a", 1.5, 1, 10.0), purchaser("b", 30, 2, 10.0), purchaser("c", 400.25, 1, 99.0)]
    computed = computed_table(con, rows)
    now, later = scores_by_id(con, computed), scores_by_id(con, computed, AS_OF + timedelta(days=10))
    assert [now[p]["recency_days"] for p in "abc"] == [1.5, 30.0, 400.25]
    assert [later[p]["recency_days"] for p in "abc"] == [11.5, 40.0, 410.25]
    assert [now[p]["r_score"] for p in "abc"] == [later[p]["r_score"] for p in "abc"] == [4, 2, 1]
    # A zoned as_of is the same instant in the store's UTC.
    # Exact to the microsecond: counting second boundaries would make 0.4 s one second.
    just = scores_by_id(con, computed_table(con, [purchaser("d", 0.4 / 86400, 1, 1.0)], "other"))
    assert just["d"]["recency_days"] == pytest.approx(0.4 / 86400, rel=1e-9)
    zoned = scores_by_id(con, computed, datetime(2024, 6, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert zoned == now


def test_the_columns_and_their_types(con: Any) -> None:
    schema = rfm_scores(computed_table(con, [purchaser("a", 1, 1, 1.0)]), AS_OF).schema()
    assert list(schema.items()) == [
        ("profile_id", ibis.dtype("string")),
        ("recency_days", ibis.dtype("float64")),
        ("frequency", ibis.dtype("int64")),
        ("monetary", ibis.dtype("float64")),
        ("r_score", ibis.dtype("int64")),
        ("f_score", ibis.dtype("int64")),
        ("m_score", ibis.dtype("int64")),
        ("rfm_score", ibis.dtype("string")),
        ("rfm_group", ibis.dtype("string")),
    ]


# -- the summary -----------------------------------------------------------------------


def assert_summary_is_consistent(summary: dict[str, Any]) -> None:
    json.dumps(summary, allow_nan=False)  # JSON-ready: plain Python values, no NaN
    groups = summary["groups"]
    assert [g["group"] for g in groups] == list(GROUPS)
    assert sum(g["customers"] for g in groups) == summary["purchasers"]
    assert math.isclose(sum(g["customer_share"] for g in groups), 1.0)
    assert math.isclose(sum(g["revenue_share"] for g in groups), 1.0)
    assert math.isclose(sum(g["revenue"] for g in groups), summary["revenue"])
    for dim, better_is_larger in (("r", False), ("f", True), ("m", True)):
        entries = summary["thresholds"][dim]
        assert [e["score"] for e in entries] == [1, 2, 3, 4, 5]
        assert sum(e["customers"] for e in entries) == summary["purchasers"]
        ranges = [(e["min"], e["max"]) for e in entries if e["customers"]]
        for low, high in ranges:
            assert low <= high
        for (lo1, hi1), (lo2, hi2) in itertools.pairwise(ranges):
            # Ties share a score, so ranges of neighbouring scores never overlap.
            assert hi1 < lo2 if better_is_larger else lo1 > hi2, (dim, entries)


def test_the_summary_shares_sum_to_one_and_thresholds_rise(con: Any) -> None:
    rows = [purchaser(f"p{i}", (i * 37) % 300 + 0.5, 1 + (i * 7) % 9, float((i * 53) % 400)) for i in range(60)]
    rows += [{"profile_id": f"x{i}", "order_count": 0, "total_revenue": None, "last_order_at": None} for i in range(7)]
    computed = computed_table(con, rows)
    summary = rfm_summary(DuckDBStore(con), computed, AS_OF)
    assert (summary["purchasers"], summary["prospects"]) == (60, 7)
    assert summary["as_of"] == "2024-06-01T00:00:00"
    assert summary["revenue"] == sum(r["total_revenue"] or 0.0 for r in rows)
    assert_summary_is_consistent(summary)
    scores = scores_by_id(con, computed)
    at_risk = [r for r in scores.values() if r["rfm_group"] == "At Risk"]
    entry = next(g for g in summary["groups"] if g["group"] == "At Risk")
    assert entry["customers"] == len(at_risk) > 0
    assert entry["mean_frequency"] == pytest.approx(sum(r["frequency"] for r in at_risk) / len(at_risk))
    f5 = summary["thresholds"]["f"][4]
    assert f5["min"] == min(r["frequency"] for r in scores.values() if r["f_score"] == 5)


def test_a_summary_of_no_purchasers_has_no_shares(con: Any) -> None:
    computed = computed_table(con, [{"profile_id": "x", "order_count": 0, "total_revenue": None, "last_order_at": None}])
    summary = rfm_summary(DuckDBStore(con), computed, AS_OF)
    assert (summary["purchasers"], summary["prospects"], summary["revenue"]) == (0, 1, 0.0)
    assert all(g["customers"] == 0 and g["customer_share"] is None and g["revenue_share"] is None for g in summary["groups"])
    assert all(e == {"score": e["score"], "customers": 0, "min": None, "max": None} for e in summary["thresholds"]["r"])
    json.dumps(summary, allow_nan=False)


# -- the real CDNOW data ---------------------------------------------------------------


def test_cdnow_scores_are_sane(con: Any) -> None:
    purchases = read_purchases()
    log = pa.table(
        {
            "customer": [f"cdnow-{p.customer}" for p in purchases],
            "at": pa.array([datetime.combine(p.day, datetime.min.time()) for p in purchases], pa.timestamp("us")),
            "dollars": [p.dollars for p in purchases],
        }
    )
    per = log.group_by("customer").aggregate([("at", "count"), ("dollars", "sum"), ("at", "max")])
    rows = [
        {"profile_id": c, "order_count": n, "total_revenue": s, "last_order_at": last}
        for c, n, s, last in zip(*(per[k].to_pylist() for k in ("customer", "at_count", "dollars_sum", "at_max")), strict=True)
    ]
    as_of = max(p.day for p in purchases) + timedelta(days=1)
    computed = computed_table(con, rows)
    scores = con.to_pyarrow(rfm_scores(computed, datetime.combine(as_of, datetime.min.time()))).to_pylist()
    assert len(scores) == len(rows) == 23570
    assert all(row["rfm_group"] in GROUPS for row in scores)  # everyone bought: no prospects
    one_time = sum(1 for row in rows if row["order_count"] == 1)
    f1 = [row for row in scores if row["f_score"] == 1]
    assert len(f1) == one_time and all(row["frequency"] == 1 for row in f1)
    # More than a fifth bought once, so their tie takes F 1 and F 2 stays empty.
    assert one_time / len(rows) > 0.4 and not any(row["f_score"] == 2 for row in scores)
    # CDNOW is one cohort (first orders in early 1997, the log runs to mid 1998): every
    # one-time buyer lapsed long ago, so nobody is recent with FM 1 (which takes F 1),
    # and New Customers and Promising are empty. The other nine groups all have people.
    assert max(row["r_score"] for row in f1) <= 3
    groups = Counter(row["rfm_group"] for row in scores)
    assert set(groups) == set(GROUPS) - {"New Customers", "Promising"}, groups
    assert pc.sum(per["dollars_sum"]).as_py() == pytest.approx(sum(row["monetary"] for row in scores))

    summary = rfm_summary(DuckDBStore(con), computed, datetime.combine(as_of, datetime.min.time(), tzinfo=UTC))
    assert_summary_is_consistent(summary)
    f = summary["thresholds"]["f"]
    assert (f[0]["min"], f[0]["max"], f[1]["customers"], f[2]["min"]) == (1, 1, 0, 2)
    champions = next(g for g in summary["groups"] if g["group"] == "Champions")
    assert champions["revenue_share"] > champions["customer_share"]
