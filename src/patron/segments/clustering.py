"""Cluster-based segmentation: a few key segments, neither too many nor too few.

The caller reads per-profile feature columns (recency, frequency, spend, ...) into an
Arrow table; :func:`fit_clusters` groups the rows and describes each group in words.
Saving the groups as static segments is the caller's job. The method, and why:

1. **Missing values** (NULL or NaN) are filled with the feature's median, so one
   missing field does not drop a customer; each fill is reported in ``warnings``.
   Semantic defaults (recency for someone who never bought) belong to the caller.
2. **Optional log1p** for the features named in ``log``. Money and counts are heavy
   tailed: without it a handful of whales become their own cluster.
3. **Robust scaling**: each feature is centred on its median and divided by its
   interquartile range (scikit-learn's ``RobustScaler`` formula), so features in days,
   orders and dollars weigh alike and outliers do not set the scale. A feature whose
   IQR is zero (mostly one value) is divided by its standard deviation instead; a
   constant one is only centred and flagged, since it cannot separate anyone.
4. **k-means for k = 2..8**, ten seeded restarts each. Up to 200,000 rows the model is
   fitted on every row; above that on a seeded sample of 200,000, then every row is
   assigned to its nearest centre. k-means on 100,000 rows takes a fraction of a second.
5. **k chosen by silhouette**: the mean silhouette (how much closer a row is to its own
   cluster than to the next one, -1..1) on a seeded sample of ``sample_size`` rows, the
   same sample for every k. The full silhouette is quadratic (80 s on 100,000 rows);
   the sampled one takes about 2 s. The highest score wins, a tie goes to the smaller
   k, and the whole curve is returned so a person can see how clear the choice was.
6. **Clusters are renumbered by size**, largest first, so cluster 0 is the biggest.
7. **Names** come from what sets a cluster apart: for each feature, the percentile of
   the cluster's median among all rows. A median outside the middle 40% of everyone
   (below the 30th or above the 70th percentile) is distinctive; the up-to-three most
   extreme are phrased ("high spend", "lapsed 6 months"), in feature order. Percentiles do not
   depend on units or on the log transform. A cluster with nothing distinctive is
   "typical customers". Names are unique within one result.
8. **Warnings** point at over- and under-segmentation: a cluster under 2% of rows, a
   chosen k with silhouette under 0.25, one cluster holding over 90% of rows.

Everything random is seeded: the same table, features and seed give the same labels,
names and curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.segments.exceptions import ClusteringUnavailable, SegmentError

K_MIN = 2
K_MAX = 8
MIN_ROWS = 10
FIT_ROWS = 200_000
"""Above this many rows k-means is fitted on a seeded sample, then assigns every row."""
MIN_SAMPLE_SIZE = 100

_DISTINCTIVE = 0.2
"""How far (in percentile, 0..0.5) a cluster median must sit from the overall middle."""
_MAX_PHRASES = 3
_TINY_SHARE = 0.02
_DOMINANT_SHARE = 0.90
_WEAK_SILHOUETTE = 0.25

_SPEND = frozenset({"monetary", "total_revenue"})
_FREQUENCY = frozenset({"frequency", "order_count"})
_RECENCY = frozenset({"recency", "recency_days"})
_BASKET = frozenset({"average_order_value"})


@dataclass(frozen=True)
class ClusterResult:
    """The chosen clustering of a table's rows, with names and diagnostics.

    Two results are equal when every field, labels included, is equal.
    """

    k: int
    """The number of clusters."""
    curve: dict[int, float]
    """Silhouette score for each k tried (one entry when k was given)."""
    labels: np.ndarray
    """Cluster index (0..k-1) per input row, in the table's row order."""
    names: list[str]
    """A unique human name per cluster, e.g. "high spend, frequent buyers"."""
    sizes: list[int]
    """Rows per cluster; non-increasing, since cluster 0 is the largest."""
    centers: list[dict[str, float]]
    """Per cluster: feature -> median of its members in the feature's original units."""
    features: list[str]
    seed: int
    log: list[str] = field(default_factory=list)
    """Features that were log1p-transformed before scaling."""
    warnings: list[str] = field(default_factory=list)
    """Things a person should know before acting on the clusters."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClusterResult):
            return NotImplemented
        return self.as_json() == other.as_json() and np.array_equal(self.labels, other.labels)

    def as_json(self) -> dict[str, Any]:
        """Everything but the labels, as plain Python values (curve keys become strings)."""
        return {
            "k": int(self.k),
            "curve": {str(k): float(score) for k, score in self.curve.items()},
            "names": list(self.names),
            "sizes": [int(size) for size in self.sizes],
            "centers": [{name: float(value) for name, value in center.items()} for center in self.centers],
            "features": list(self.features),
            "seed": int(self.seed),
            "log": list(self.log),
            "warnings": list(self.warnings),
        }


def fit_clusters(
    table: pa.Table,
    features: Sequence[str],
    *,
    k: int | None = None,
    k_range: tuple[int, int] = (K_MIN, K_MAX),
    seed: int = 0,
    sample_size: int = 10_000,
    log: Sequence[str] = (),
) -> ClusterResult:
    """Group the table's rows into a few clusters on the given numeric features.

    Args:
        table: One row per profile; the feature columns must be numeric or boolean.
        features: The columns to cluster on, e.g. ``["recency_days", "frequency", "monetary"]``.
        k: A fixed number of clusters (2..8); ``None`` tries every k in ``k_range``.
        k_range: The smallest and largest k to try, inclusive, within 2..8. Fewer are
            tried when the table has fewer distinct rows than the largest k.
        seed: Seeds k-means and every sample; same input and seed, same result.
        sample_size: Rows used for the silhouette score (at least 100).
        log: Features to ``log1p`` before scaling (non-negative, heavy-tailed ones).

    Returns:
        The clustering, with per-k silhouette scores, names, sizes, medians and warnings.

    Raises:
        ClusteringUnavailable: scikit-learn (``patron[cluster]``) is not installed.
        SegmentError: the features, values or options cannot be used; the message says why.

    Examples:
        >>> result = fit_clusters(table, ["recency_days", "frequency", "monetary"],
        ...                       log=["frequency", "monetary"])
        >>> result.k, result.names  # for three well-separated groups
        (3, ['typical customers', 'lapsed 6 months, one-off buyers, low spend',
             'recent buyers, frequent buyers, high spend'])
    """
    kmeans_class, silhouette_score = _load_sklearn()
    features, log = _check_options(
        table, features, k=k, k_range=k_range, seed=seed, sample_size=sample_size, log=log
    )
    warnings: list[str] = []
    values = _feature_matrix(table, features, warnings)
    n = values.shape[0]
    scaled = _scale(_log1p(values, features, log), features, warnings)

    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, FIT_ROWS, replace=False)) if n > FIT_ROWS else None
    score_rows = np.sort(rng.choice(n, sample_size, replace=False)) if n > sample_size else None
    fit_matrix = scaled if fit_rows is None else scaled[fit_rows]
    distinct = len(np.unique(fit_matrix, axis=0))

    ks = _ks_to_try(k, k_range, distinct, warnings)
    curve: dict[int, float] = {}
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for candidate in ks:
        model = kmeans_class(n_clusters=candidate, n_init=10, random_state=seed).fit(fit_matrix)
        labels = np.asarray(model.labels_ if fit_rows is None else model.predict(scaled), dtype=np.int64)
        score = _silhouette(silhouette_score, scaled, labels, score_rows)
        curve[candidate] = score
        if best is None or score > best[0]:  # strictly greater: a tie keeps the smaller k
            best = (score, candidate, labels, np.asarray(model.cluster_centers_))
    assert best is not None  # ks is never empty
    score, chosen, labels, centres = best

    labels = _relabel_by_size(labels, centres, chosen)
    sizes = np.bincount(labels, minlength=chosen)
    medians = np.array([np.median(values[labels == c], axis=0) for c in range(chosen)])
    names = _names(values, medians, features)
    warnings.extend(_segmentation_warnings(names, sizes, n, chosen, score))
    return ClusterResult(
        k=chosen,
        curve=curve,
        labels=labels,
        names=names,
        sizes=[int(size) for size in sizes],
        centers=[{f: float(medians[c, j]) for j, f in enumerate(features)} for c in range(chosen)],
        features=list(features),
        seed=seed,
        log=list(log),
        warnings=warnings,
    )


def _load_sklearn() -> tuple[Any, Any]:
    """KMeans and silhouette_score, imported only when a clustering is asked for."""
    try:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score
    except ImportError:
        raise ClusteringUnavailable() from None
    return KMeans, silhouette_score


def _check_options(
    table: pa.Table,
    features: Sequence[str],
    *,
    k: int | None,
    k_range: tuple[int, int],
    seed: int,
    sample_size: int,
    log: Sequence[str],
) -> tuple[list[str], list[str]]:
    if isinstance(features, str) or isinstance(log, str):
        raise SegmentError(
            "features and log take a list of column names, not one string; split 'a,b' on commas"
        )
    names, logged = list(features), list(log)
    if not names:
        raise SegmentError(
            "no features given; name numeric columns such as recency_days, frequency, monetary"
        )
    repeated = sorted({f for f in names if names.count(f) > 1})
    if repeated:
        raise SegmentError(f"features named more than once: {', '.join(repeated)}")
    unknown = [f for f in names if f not in table.column_names]
    if unknown:
        raise SegmentError(
            f"unknown feature{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the table has: {', '.join(table.column_names) or '(no columns)'}"
        )
    stray = [f for f in logged if f not in names]
    if stray:
        raise SegmentError(
            f"log names {', '.join(map(repr, stray))}, which {'is' if len(stray) == 1 else 'are'} not among the features"
        )
    lo, hi = k_range
    if not K_MIN <= lo <= hi <= K_MAX:
        raise SegmentError(f"k_range must lie within {K_MIN}..{K_MAX} with the smaller first; got {lo}..{hi}")
    if k is not None and not K_MIN <= k <= K_MAX:
        raise SegmentError(
            f"k must be between {K_MIN} and {K_MAX} (a few segments a person can act on); got {k}"
        )
    if not 0 <= seed < 2**32:
        raise SegmentError(f"seed must be an integer in 0..2**32-1; got {seed}")
    if sample_size < MIN_SAMPLE_SIZE:
        raise SegmentError(f"sample_size must be at least {MIN_SAMPLE_SIZE}; got {sample_size}")
    if table.num_rows < MIN_ROWS:
        raise SegmentError(f"clustering needs at least {MIN_ROWS} rows; the table has {table.num_rows}")
    return names, logged


def _feature_matrix(table: pa.Table, features: list[str], warnings: list[str]) -> np.ndarray:
    """The features as a float64 matrix (rows x features), NULLs filled with the median."""
    problems = [problem for f in features if (problem := _type_problem(f, table.schema.field(f).type))]
    if problems:
        raise SegmentError("cannot cluster on " + "; ".join(problems))
    columns = []
    for name in features:
        column = pc.cast(table.column(name), pa.float64(), safe=False).to_numpy()
        if np.isinf(column).any():
            raise SegmentError(f"{name!r} has infinite values; replace or filter them before clustering")
        missing = np.isnan(column)
        if missing.all():
            raise SegmentError(f"{name!r} has no values (every row is NULL); drop it from the features")
        if missing.any():
            median = float(np.median(column[~missing]))
            column = np.where(missing, median, column)
            share = missing.mean()
            warnings.append(
                f"{name!r}: {int(missing.sum())} missing values ({share:.1%}) filled with the median {median:g}"
            )
        columns.append(column)
    return np.column_stack(columns)


def _type_problem(name: str, type_: pa.DataType) -> str | None:
    if pa.types.is_boolean(type_) or pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return None
    if pa.types.is_decimal(type_):
        return None
    if pa.types.is_temporal(type_):
        return (
            f"{name!r}, a {type_} column: turn dates into numbers first, "
            f"e.g. days since it (as recency_days is days since the last order)"
        )
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_dictionary(type_):
        return (
            f"{name!r}, a text ({type_}) column: clustering needs numbers; use a 0/1 column per value instead"
        )
    return f"{name!r}, a {type_} column: clustering needs numeric or boolean columns"


def _log1p(values: np.ndarray, features: list[str], log: list[str]) -> np.ndarray:
    if not log:
        return values
    out = values.copy()
    for name in log:
        j = features.index(name)
        lowest = float(out[:, j].min())
        if lowest < 0:
            raise SegmentError(
                f"log1p needs non-negative values; {name!r} goes down to {lowest:g}; leave it out of log"
            )
        out[:, j] = np.log1p(out[:, j])
    return out


def _scale(values: np.ndarray, features: list[str], warnings: list[str]) -> np.ndarray:
    """Centre on the median, divide by the IQR (else the standard deviation, else 1)."""
    center = np.median(values, axis=0)
    q75, q25 = np.percentile(values, [75, 25], axis=0)
    std = values.std(axis=0)
    scale = np.where(q75 > q25, q75 - q25, np.where(std > 0, std, 1.0))
    for j in np.flatnonzero(std == 0):
        warnings.append(
            f"{features[j]!r} is constant (every row is {values[0, j]:g}); it cannot separate customers, drop it"
        )
    return np.ascontiguousarray((values - center) / scale)


def _ks_to_try(k: int | None, k_range: tuple[int, int], distinct: int, warnings: list[str]) -> list[int]:
    if distinct < K_MIN:
        raise SegmentError("every row has the same values on these features; there is nothing to cluster")
    if k is not None:
        if k > distinct:
            raise SegmentError(f"k={k} is more than the {distinct} distinct rows; choose k <= {distinct}")
        return [k]
    lo, hi = k_range
    if lo > distinct:
        raise SegmentError(
            f"only {distinct} distinct rows, fewer than the smallest k tried ({lo}); lower k_range"
        )
    if hi > distinct:
        warnings.append(f"only {distinct} distinct rows: tried k={lo}..{distinct} instead of {lo}..{hi}")
        hi = distinct
    return list(range(lo, hi + 1))


def _silhouette(
    silhouette_score: Any, scaled: np.ndarray, labels: np.ndarray, rows: np.ndarray | None
) -> float:
    sample, sample_labels = (scaled, labels) if rows is None else (scaled[rows], labels[rows])
    if len(np.unique(sample_labels)) < 2:
        return -1.0  # the sample missed all clusters but one: no evidence of structure
    return float(silhouette_score(sample, sample_labels))


def _relabel_by_size(labels: np.ndarray, centres: np.ndarray, k: int) -> np.ndarray:
    """Renumber so cluster 0 is the largest; equal sizes are ordered by their centres."""
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-int(sizes[c]), tuple(float(x) for x in centres[c])))
    mapping: np.ndarray = np.empty(k, dtype=np.int64)
    mapping[order] = np.arange(k)
    return mapping[labels]


def _names(values: np.ndarray, medians: np.ndarray, features: list[str]) -> list[str]:
    """A unique name per cluster from its most distinctive features."""
    ordered = np.sort(values, axis=0)
    n = values.shape[0]
    names: list[str] = []
    for medians_c in medians:
        ranked = []
        for j, name in enumerate(features):
            m = medians_c[j]
            below = np.searchsorted(ordered[:, j], m, side="left")
            at_or_below = np.searchsorted(ordered[:, j], m, side="right")
            deviation = (below + at_or_below) / (2 * n) - 0.5  # mid-rank percentile of the median, centred
            if abs(deviation) >= _DISTINCTIVE:
                ranked.append((-abs(deviation), j, _phrase(name, deviation > 0, float(m))))
        # The most extreme features are picked, then said in the caller's feature order, so
        # every name in a result reads alike ("recent buyers, frequent buyers, high spend").
        picked = sorted(ranked)
        name = _join(picked[:_MAX_PHRASES]) or "typical customers"
        extra = _MAX_PHRASES
        while name in names and extra < len(picked):  # a clash: say one thing more
            extra += 1
            name = _join(picked[:extra])
        base, copy = name, 2
        while name in names:
            name, copy = f"{base} ({copy})", copy + 1
        names.append(name)
    return names


def _join(picked: list[tuple[float, int, str]]) -> str:
    phrases = [phrase for _, _, phrase in sorted(picked, key=lambda item: item[1])]
    return ", ".join(dict.fromkeys(phrases))  # two spend columns make one "high spend"


def _phrase(feature: str, high: bool, median: float) -> str:
    if feature in _SPEND:
        return "high spend" if high else "low spend"
    if feature in _FREQUENCY:
        return "frequent buyers" if high else ("one-off buyers" if median <= 1 else "infrequent buyers")
    if feature in _RECENCY:
        if not high:
            return "recent buyers"
        months = round(median / 30)
        if months < 1:
            return f"lapsed {round(median)} days"
        return f"lapsed {months} month{'s' if months > 1 else ''}"
    if feature in _BASKET:
        return "big baskets" if high else "small baskets"
    return f"{'high' if high else 'low'} {feature.replace('_', ' ')}"


def _segmentation_warnings(names: list[str], sizes: np.ndarray, n: int, k: int, score: float) -> list[str]:
    warnings = []
    if score < _WEAK_SILHOUETTE:
        warnings.append(
            f"weak structure: the clusters overlap (silhouette {score:.2f} at k={k}, under {_WEAK_SILHOUETTE}); "
            "treat them as a rough split, or try other features"
        )
    for name, size in zip(names, sizes, strict=True):
        share = size / n
        if share > _DOMINANT_SHARE:
            warnings.append(
                f"{name!r} holds {share:.0%} of rows: the split mostly sets a few outliers apart; "
                "try log on heavy-tailed features, or filter the outliers out first"
            )
        elif share < _TINY_SHARE:
            warnings.append(f"{name!r} has {size} rows ({share:.1%}), too small to act on; try a smaller k")
    return warnings
