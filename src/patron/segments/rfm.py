"""RFM: recency, frequency and monetary scores of every customer, and the named groups.

Each purchasing profile (``order_count`` above 0) gets three scores from 1 to 5, over
the purchasers only:

- **R** from ``recency_days``, the days from its latest order to ``as_of`` (fewer is better),
- **F** from ``frequency``, its ``order_count``,
- **M** from ``monetary``, its ``total_revenue`` (0 when its orders carried no revenue).

**Scores are quintiles with ties kept together.** A customer's score is
``1 + floor(5 * worse / purchasers)``, where ``worse`` is how many purchasers have a
strictly worse value. Equal values always get equal scores, which a plain "split into
five equal buckets" (``ntile``) cannot promise: it would put two customers with the same
order count in different buckets depending on row order, and differently on DuckDB and
Spark. The price is that a value shared by many customers takes one score and the scores
it would have spread over stay empty. On CDNOW about half the customers bought once: all
of them get F=1, nobody gets F=2, and two orders already earn F=3.

**Computed from four cuts per score** (:class:`RfmCuts`). ``worse >= c`` holds exactly
when the ``c``-th worst value is strictly worse than the customer's, so the score is 1
plus how many of the four values ``cut[s]`` (the ``ceil((s - 1) * purchasers / 5)``-th
worst, s = 2..5) the customer's value is better than. The cuts take one sort per
dimension; the scores are then comparisons of each row with twelve constants, so the
scores of a few profiles cost no ranking of everyone; and when the cuts have not moved
since an evaluation, only the profiles whose own values changed can have new scores
(:meth:`RfmCuts.moved`): what lets segments on RFM refresh incrementally. Recency is
ranked by ``last_order_at`` (a later order is better), which orders customers as
``recency_days`` does at any instant: the cuts do not move with the clock.

**Groups.** ``FM`` is the mean of F and M rounded half up (``(f + m + 1) // 2``); the
5x5 grid :data:`RFM_GRID` of (R, FM) names each of the 125 (R, F, M) cells with one of
the eleven groups in :data:`GROUPS`, following the widely used RFM segment definitions.
Profiles without orders are :data:`PROSPECTS` and have no scores. docs/rfm.md publishes
the same grid; a test reads it there, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

GROUPS: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)
"""The eleven named groups of purchasers, best first (the order reports list them in)."""

PROSPECTS = "Prospects"
"""The group of profiles without orders."""

SCORES = (1, 2, 3, 4, 5)
_MICROS_PER_DAY = 86_400_000_000.0

_CHAMPIONS, _LOYAL, _POTENTIAL, _NEW, _PROMISING, _ATTENTION, _SLEEP, _RISK, _CANT_LOSE, _HIBERNATING, _LOST = GROUPS

RFM_GRID: tuple[tuple[str, str, str, str, str], ...] = (
    # FM:   1             2              3            4            5
    (_NEW, _POTENTIAL, _POTENTIAL, _CHAMPIONS, _CHAMPIONS),  # R = 5
    (_PROMISING, _POTENTIAL, _POTENTIAL, _LOYAL, _LOYAL),  # R = 4
    (_SLEEP, _SLEEP, _ATTENTION, _LOYAL, _LOYAL),  # R = 3
    (_HIBERNATING, _HIBERNATING, _RISK, _RISK, _CANT_LOSE),  # R = 2
    (_LOST, _HIBERNATING, _RISK, _RISK, _CANT_LOSE),  # R = 1
)
"""The group of each (R, FM) cell: rows R = 5 down to 1, columns FM = 1 to 5, as in docs/rfm.md."""


def fm_score(f: int, m: int) -> int:
    """The mean of F and M, rounded half up: 1 and 2 give 2, 4 and 5 give 5."""
    return (f + m + 1) // 2


def rfm_group_of(r: int, f: int, m: int) -> str:
    """The group of a purchaser with scores ``r``, ``f`` and ``m``.

    Raises:
        ValueError: a score outside 1..5.

    Examples:
        >>> rfm_group_of(5, 5, 4)
        'Champions'
        >>> rfm_group_of(1, 1, 1)
        'Lost'
    """
    if not all(isinstance(s, int) and s in SCORES for s in (r, f, m)):
        raise ValueError(f"RFM scores are integers from 1 to 5, got r={r!r}, f={f!r}, m={m!r}")
    return RFM_GRID[5 - r][fm_score(f, m) - 1]


def _runs(row: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Consecutive FM columns of one grid row with the same group: (first FM, last FM, group)."""
    runs: list[tuple[int, int, str]] = []
    for fm, group in enumerate(row, start=1):
        if runs and runs[-1][2] == group:
            runs[-1] = (runs[-1][0], fm, group)
        else:
            runs.append((fm, fm, group))
    return runs


def group_expression(r: ir.IntegerValue, f: ir.IntegerValue, m: ir.IntegerValue) -> ir.StringValue:
    """The group of score columns, as :func:`rfm_group_of` names it; NULL where a score is NULL.

    Compiled from :data:`RFM_GRID`, one ``CASE`` branch per run of equal cells in a row.
    FM is tested through ``f + m`` (FM = k exactly when f + m is 2k - 1 or 2k), which
    needs no integer division, whose spelling differs between engines.
    """
    total = f + m
    branches = []
    for index, row in enumerate(RFM_GRID):
        for first, last, group in _runs(row):
            branches.append(((r == 5 - index) & total.between(2 * first - 1, 2 * last), group))
    return ibis.cases(*branches, else_=ibis.null(dt.string))


def _naive_utc(at: datetime) -> datetime:
    # The store keeps UTC times without a zone (store/tables.py).
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


class ArrowReader(Protocol):
    """What :func:`rfm_summary` needs of a store: running an expression into Arrow."""

    def to_pyarrow(self, expr: ir.Table) -> pa.Table: ...


#: The three dimensions and the type of the value each ranks (later or larger is better:
#: ``last_order_at``, ``order_count``, ``total_revenue``).
_DIMENSIONS: tuple[tuple[str, dt.DataType], ...] = (("r", dt.timestamp), ("f", dt.int64), ("m", dt.float64))
_CUT_SCORES = (2, 3, 4, 5)


def _ranked_values(computed: ir.Table) -> dict[str, ir.Value]:
    """Of each purchaser, the value each dimension ranks (NULL revenue counts as 0)."""
    return {
        "r": computed.last_order_at,
        "f": ibis.coalesce(computed.order_count, 0).cast(dt.int64),
        "m": ibis.coalesce(computed.total_revenue.cast(dt.float64), 0.0),
    }


@dataclass(frozen=True)
class RfmCuts:
    """Where each score begins over the purchasers of one moment: a purchaser's score in
    a dimension is 1 plus how many of its four cuts its value is above (module docs).
    ``r`` holds ``last_order_at`` times, ``f`` order counts, ``m`` revenues; all empty
    when nobody has ordered."""

    purchasers: int
    r: tuple[datetime, ...]
    f: tuple[int, ...]
    m: tuple[float, ...]

    def as_json(self) -> dict[str, Any]:
        return {"purchasers": self.purchasers, "r": [t.isoformat() for t in self.r], "f": list(self.f),
                "m": list(self.m)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RfmCuts:
        return cls(int(data["purchasers"]), tuple(datetime.fromisoformat(t) for t in data["r"]),
                   tuple(int(v) for v in data["f"]), tuple(float(v) for v in data["m"]))  # fmt: skip

    def of(self, dimension: str) -> tuple[Any, ...]:
        return {"r": self.r, "f": self.f, "m": self.m}[dimension]

    def moved(self, earlier: RfmCuts, computed: ir.Table) -> ir.BooleanValue | None:
        """The purchasers whose score differs between ``earlier`` cuts and these with the
        same value: those between an old and a new cut (``None``: nobody)."""
        values = _ranked_values(computed)
        test: ir.BooleanValue | None = None
        for name, kind in _DIMENSIONS:
            for old, new in zip(earlier.of(name), self.of(name), strict=True):
                if old == new:
                    continue
                low, high = (ibis.literal(v, type=kind) for v in sorted((old, new)))
                between = (values[name] > low) & (values[name] <= high)
                test = between if test is None else test | between
        return test


def rfm_cuts_expression(computed: ir.Table) -> ir.Table:
    """One row: ``purchasers`` and, per dimension and score s = 2..5, ``{r,f,m}_cut{s}``,
    the ``ceil((s - 1) * purchasers / 5)``-th worst value (NULL when nobody ordered)."""
    buyers = computed.filter(ibis.coalesce(computed.order_count, 0) > 0)
    values = _ranked_values(buyers)
    parts = []
    for name, _ in _DIMENSIONS:
        ranked = buyers.select(v=values[name], i=ibis.row_number().over(order_by=values[name]),
                               n=buyers.profile_id.count().over())  # fmt: skip
        # ceil in floating point is exact here: (s - 1) * n is an integer far below 2**50,
        # and a fifth of it is either whole or at least 0.2 from the next whole number.
        cuts = {f"{name}_cut{s}": ranked.v.max(where=ranked.i == ((s - 1) * ranked.n / 5).ceil().cast(dt.int64) - 1)
                for s in _CUT_SCORES}  # fmt: skip
        if name == "r":
            cuts["purchasers"] = ranked.count()
        parts.append(ranked.aggregate(**cuts))
    row = parts[0]
    for part in parts[1:]:
        row = row.cross_join(part)
    return row


def rfm_cuts(store: ArrowReader, computed: ir.Table) -> RfmCuts:
    """The cuts of ``computed``'s purchasers now (one sort per dimension)."""
    row = store.to_pyarrow(rfm_cuts_expression(computed)).to_pylist()[0]
    purchasers = int(row["purchasers"] or 0)
    if not purchasers:
        return RfmCuts(0, (), (), ())
    found = {name: tuple(row[f"{name}_cut{s}"] for s in _CUT_SCORES) for name, _ in _DIMENSIONS}
    r = tuple(_naive_utc(t) for t in found["r"])
    return RfmCuts(purchasers, r, tuple(int(v) for v in found["f"]), tuple(float(v) for v in found["m"]))


def _score(value: ir.Value, cuts: Sequence[ir.Value]) -> ir.IntegerValue:
    above = [ibis.ifelse(value > cut, 1, 0) for cut in cuts]
    total: ir.IntegerValue = ibis.literal(1, type=dt.int64)
    for one in above:
        total = total + one
    return total.cast(dt.int64)


def rfm_scores(computed: ir.Table, as_of: datetime, cuts: RfmCuts | None = None) -> ir.Table:
    """RFM scores and group of every profile of ``computed`` (``profile_computed``).

    Args:
        computed: one row per profile with ``profile_id``, ``order_count``,
            ``total_revenue`` and ``last_order_at``.
        as_of: the time recency is measured to (naive times are UTC).
        cuts: the purchasers' cuts (:func:`rfm_cuts`), when known: the scores are then
            comparisons with constants, and ``computed`` may be a few rows of the
            profiles the cuts were taken over. ``None``: taken from ``computed`` itself.

    Returns:
        One row per profile: ``profile_id``, ``recency_days`` (float64 days since the
        latest order), ``frequency`` (orders; 0 for prospects), ``monetary`` (revenue, 0
        for purchasers without any), ``r_score``, ``f_score``, ``m_score`` (1 to 5),
        ``rfm_score`` (such as ``"545"``) and ``rfm_group``. Prospects (no orders) have
        NULL recency, monetary and scores, and the group :data:`PROSPECTS`.
    """
    orders = ibis.coalesce(computed.order_count, 0)
    purchaser = orders > 0
    values = _ranked_values(computed)
    if cuts is None:
        row = rfm_cuts_expression(computed)
        computed = computed.cross_join(row)
        bounds = {name: [computed[f"{name}_cut{s}"] for s in _CUT_SCORES] for name, _ in _DIMENSIONS}
        values = _ranked_values(computed)
        orders = ibis.coalesce(computed.order_count, 0)
        purchaser = orders > 0
    elif cuts.purchasers:
        bounds = {name: [ibis.literal(v, type=kind) for v in cuts.of(name)] for name, kind in _DIMENSIONS}
    else:
        bounds = {}
    # In microseconds: a difference in seconds counts second boundaries crossed on DuckDB
    # but whole seconds elapsed on Spark, and the two disagree for sub-second times.
    micros = ibis.literal(_naive_utc(as_of), type=dt.timestamp).delta(computed.last_order_at, unit="microsecond")

    def score(name: str) -> ir.IntegerValue:
        if name not in bounds:  # nobody has ordered: nobody is scored
            return ibis.null(dt.int64)
        return ibis.ifelse(purchaser, _score(values[name], bounds[name]), ibis.null(dt.int64))

    scored = computed.select(
        "profile_id",
        _purchaser=purchaser,
        recency_days=ibis.ifelse(purchaser, micros.cast(dt.float64) / _MICROS_PER_DAY, ibis.null(dt.float64)),
        frequency=orders.cast(dt.int64),
        monetary=ibis.ifelse(purchaser, values["m"], ibis.null(dt.float64)),
        r_score=score("r"),
        f_score=score("f"),
        m_score=score("m"),
    )
    code = scored.r_score.cast(dt.string).concat(scored.f_score.cast(dt.string), scored.m_score.cast(dt.string))
    return scored.select(
        "profile_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        rfm_score=code,
        rfm_group=ibis.ifelse(
            scored._purchaser, group_expression(scored.r_score, scored.f_score, scored.m_score), PROSPECTS
        ),
    )


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _thresholds(store: ArrowReader, scores: ir.Table, score: str, value: str) -> list[dict[str, Any]]:
    """For each score 1..5: how many purchasers got it and the least and greatest value
    that did (NULL bounds where nobody did)."""
    rows = store.to_pyarrow(
        scores.filter(scores[score].notnull())
        .group_by(score)
        .aggregate(customers=scores.profile_id.count(), min=scores[value].min(), max=scores[value].max())
    ).to_pylist()
    found = {row[score]: row for row in rows}
    out = []
    for s in SCORES:
        row = found.get(s)
        out.append(
            {
                "score": s,
                "customers": int(row["customers"]) if row else 0,
                "min": row["min"] if row else None,
                "max": row["max"] if row else None,
            }
        )
    return out


def rfm_summary(store: ArrowReader, computed: ir.Table, as_of: datetime) -> dict[str, Any]:
    """Sizes, revenue and thresholds of the RFM groups, JSON-ready (what ``patron rfm`` prints).

    Args:
        store: runs the expressions (``workspace.store``).
        computed: the ``profile_computed`` table.
        as_of: the time recency is measured to.

    Returns:
        ``as_of`` (ISO text), ``purchasers``, ``prospects``, ``revenue`` (total);
        ``groups``: the eleven groups of :data:`GROUPS` in order, each with
        ``customers``, ``customer_share`` (of purchasers), ``revenue``, ``revenue_share``
        and ``mean_recency_days``/``mean_frequency``/``mean_monetary`` (NULL for an empty
        group); ``thresholds``: for ``r`` (``recency_days``), ``f`` (``frequency``) and
        ``m`` (``monetary``), one entry per score 1..5 with ``customers``, ``min`` and
        ``max``, so "F=5" reads as "``min`` orders or more". Shares are NULL when the
        whole is 0.
    """
    scores = rfm_scores(computed, as_of)
    per_group = store.to_pyarrow(
        scores.group_by("rfm_group").aggregate(
            customers=scores.profile_id.count(),
            revenue=scores.monetary.sum(),
            mean_recency_days=scores.recency_days.mean(),
            mean_frequency=scores.frequency.mean(),
            mean_monetary=scores.monetary.mean(),
        )
    ).to_pylist()
    found = {row["rfm_group"]: row for row in per_group}
    prospects = int(found.get(PROSPECTS, {}).get("customers", 0))
    purchasers = sum(int(row["customers"]) for name, row in found.items() if name != PROSPECTS)
    revenue = sum(float(row["revenue"] or 0.0) for name, row in found.items() if name != PROSPECTS)
    groups = []
    for name in GROUPS:
        row = found.get(name)
        customers = int(row["customers"]) if row else 0
        group_revenue = float(row["revenue"] or 0.0) if row else 0.0
        groups.append(
            {
                "group": name,
                "customers": customers,
                "customer_share": _share(customers, purchasers),
                "revenue": group_revenue,
                "revenue_share": _share(group_revenue, revenue),
                **{
                    mean: float(row[mean]) if row and row[mean] is not None else None
                    for mean in ("mean_recency_days", "mean_frequency", "mean_monetary")
                },
            }
        )
    return {
        "as_of": _naive_utc(as_of).isoformat(),
        "purchasers": purchasers,
        "prospects": prospects,
        "revenue": revenue,
        "groups": groups,
        "thresholds": {
            "r": _thresholds(store, scores, "r_score", "recency_days"),
            "f": _thresholds(store, scores, "f_score", "frequency"),
            "m": _thresholds(store, scores, "m_score", "monetary"),
        },
    }
