"""Cluster-based segmentation: k chosen by silhouette, names, determinism, validation, warnings."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pytest
from sklearn.metrics import adjusted_rand_score

from patron.segments import clustering
from patron.segments.clustering import ClusterResult, fit_clusters
from patron.segments.exceptions import ClusteringUnavailable, SegmentError

RFM = ["recency_days", "frequency", "monetary"]
LOG = ["frequency", "monetary"]

# (rows, recency days, orders, spend) per generated group.
TYPICAL = (350, 20, 4, 150)
LAPSED = (250, 180, 1, 40)
WHALES = (150, 10, 15, 2000)
MIDDLE = (200, 60, 8, 600)


def rfm_groups(*groups: tuple[int, float, float, float], seed: int = 7) -> tuple[pa.Table, np.ndarray]:
    """Well-separated groups in (recency, frequency, monetary), and the true group per row."""
    rng = np.random.default_rng(seed)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in RFM}
    for rows, recency, orders, spend in groups:
        columns["recency_days"].append(rng.normal(recency, recency * 0.1, rows).clip(0).round())
        columns["frequency"].append(rng.normal(orders, orders * 0.1, rows).clip(1).round())
        columns["monetary"].append(rng.lognormal(np.log(spend), 0.1, rows).round(2))
    truth = np.repeat(np.arange(len(groups)), [group[0] for group in groups])
    return pa.table({name: np.concatenate(parts) for name, parts in columns.items()}), truth


def name_of_group(result: ClusterResult, truth: np.ndarray, group: int) -> str:
    """The name of the cluster holding most rows of a generated group."""
    cluster = Counter(result.labels[truth == group].tolist()).most_common(1)[0][0]
    return result.names[cluster]


@pytest.fixture(scope="module")
def three() -> tuple[pa.Table, np.ndarray, ClusterResult]:
    table, truth = rfm_groups(TYPICAL, LAPSED, WHALES)
    return table, truth, fit_clusters(table, RFM, log=LOG)


def test_three_groups_give_k_3_with_the_peak_of_the_curve_at_3(
    three: tuple[pa.Table, np.ndarray, ClusterResult],
) -> None:
    _, truth, result = three
    assert result.k == 3
    assert sorted(result.curve) == list(range(2, 9))
    assert max(result.curve, key=result.curve.__getitem__) == 3
    assert adjusted_rand_score(truth, result.labels) >= 0.99
    assert result.sizes == [350, 250, 150]
    assert np.bincount(result.labels).tolist() == result.sizes
    assert result.features == RFM and result.log == LOG and result.seed == 0
    assert result.warnings == []


def test_three_groups_are_named_by_what_sets_them_apart(
    three: tuple[pa.Table, np.ndarray, ClusterResult],
) -> None:
    _, truth, result = three
    lapsed, whales = name_of_group(result, truth, 1), name_of_group(result, truth, 2)
    assert "lapsed 6 months" in lapsed and "one-off buyers" in lapsed and "low spend" in lapsed
    assert "high spend" in whales and "frequent buyers" in whales and "recent buyers" in whales
    assert name_of_group(result, truth, 0) == "typical customers"


def test_centers_are_medians_in_original_units(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, truth, result = three
    whales = Counter(result.labels[truth == 2].tolist()).most_common(1)[0][0]
    spend = table.column("monetary").to_numpy()[result.labels == whales]
    assert result.centers[whales]["monetary"] == pytest.approx(float(np.median(spend)))
    assert 1800 < result.centers[whales]["monetary"] < 2200  # not the log, not the scaled value
    assert set(result.centers[whales]) == set(RFM)


def test_four_groups_give_k_4() -> None:
    table, truth = rfm_groups(TYPICAL, LAPSED, WHALES, MIDDLE)
    result = fit_clusters(table, RFM, log=LOG)
    assert result.k == 4
    assert max(result.curve, key=result.curve.__getitem__) == 4
    assert adjusted_rand_score(truth, result.labels) >= 0.99
    assert len(set(result.names)) == 4


def test_the_same_seed_gives_the_same_result(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, _, first = three
    again = fit_clusters(table, RFM, log=LOG)
    assert again == first
    assert np.array_equal(again.labels, first.labels)
    assert again.curve == first.curve and again.names == first.names


def test_a_different_seed_finds_the_same_clusters(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, _, first = three
    other = fit_clusters(table, RFM, log=LOG, seed=12345)
    assert other.seed == 12345
    assert other.k == first.k == 3
    assert adjusted_rand_score(first.labels, other.labels) >= 0.99
    assert other.names == first.names  # clusters are numbered by size, not by the seed's order


def test_results_with_other_labels_are_not_equal(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    _, _, result = three
    flipped = dataclasses.replace(result, labels=result.labels[::-1].copy())
    assert flipped != result


def test_a_given_k_is_the_only_one_fitted(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, _, _ = three
    result = fit_clusters(table, RFM, log=LOG, k=5)
    assert result.k == 5
    assert list(result.curve) == [5]
    assert len(result.names) == len(result.sizes) == len(result.centers) == 5
    assert sorted(set(result.labels.tolist())) == [0, 1, 2, 3, 4]
    assert result.sizes == sorted(result.sizes, reverse=True)


def test_missing_values_are_filled_with_the_median() -> None:
    table, truth = rfm_groups(TYPICAL, LAPSED, WHALES)
    spend = table.column("monetary").to_pylist()
    recency = table.column("recency_days").to_numpy().copy()
    for row in range(0, 350, 25):  # 14 NULLs among the typical group's spend
        spend[row] = None
    recency[[400, 401]] = np.nan  # NaN counts as missing too
    holes = table.set_column(2, "monetary", pa.array(spend)).set_column(0, "recency_days", pa.array(recency))
    result = fit_clusters(holes, RFM, log=LOG)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) >= 0.99
    median = float(np.median([value for value in spend if value is not None]))
    assert f"'monetary': 14 missing values (1.9%) filled with the median {median:g}" in result.warnings
    assert any(w.startswith("'recency_days': 2 missing values") for w in result.warnings)


def test_booleans_count_as_0_and_1() -> None:
    rng = np.random.default_rng(1)
    subscribed = np.repeat([True, False], 100)
    table = pa.table(
        {"subscribed": subscribed, "sessions": np.where(subscribed, 30.0, 2.0) + rng.normal(0, 1, 200)}
    )
    result = fit_clusters(table, ["subscribed", "sessions"], k=2)
    assert sorted(center["subscribed"] for center in result.centers) == [0.0, 1.0]
    assert sorted(result.names) == ["high subscribed, high sessions", "low subscribed, low sessions"]


def test_features_over_200000_rows_are_fitted_on_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clustering, "FIT_ROWS", 300)  # the sample path, without 200,000 rows
    table, truth = rfm_groups(TYPICAL, LAPSED, WHALES)
    result = fit_clusters(table, RFM, log=LOG, sample_size=400)
    assert result.k == 3
    assert len(result.labels) == table.num_rows
    assert adjusted_rand_score(truth, result.labels) >= 0.99


def test_an_unknown_feature_names_the_columns_there_are(
    three: tuple[pa.Table, np.ndarray, ClusterResult],
) -> None:
    table, _, _ = three
    with pytest.raises(
        SegmentError, match=r"unknown feature 'spend'; the table has: recency_days, frequency, monetary"
    ):
        fit_clusters(table, ["recency_days", "spend"])


def test_a_text_column_is_refused(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, _, _ = three
    table = table.append_column("country", pa.array(["NL"] * table.num_rows))
    with pytest.raises(SegmentError, match=r"'country', a text \(string\) column: clustering needs numbers"):
        fit_clusters(table, ["monetary", "country"])


def test_a_timestamp_column_is_refused_with_a_hint(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    table, _, _ = three
    table = table.append_column("last_order_at", pa.array([datetime(2024, 1, 1)] * table.num_rows))
    with pytest.raises(SegmentError, match=r"'last_order_at', a timestamp\[us\] column: .*days since"):
        fit_clusters(table, ["monetary", "last_order_at"])


def test_too_few_rows_are_refused() -> None:
    table = pa.table({"monetary": [1.0, 2.0, 3.0, 50.0]})
    with pytest.raises(SegmentError, match=r"at least 10 rows; the table has 4"):
        fit_clusters(table, ["monetary"])


@pytest.mark.parametrize("k", [1, 9])
def test_k_outside_2_to_8_is_refused(three: tuple[pa.Table, np.ndarray, ClusterResult], k: int) -> None:
    table, _, _ = three
    with pytest.raises(SegmentError, match=rf"k must be between 2 and 8 .*got {k}"):
        fit_clusters(table, RFM, k=k)


def test_k_above_the_distinct_rows_is_refused() -> None:
    table = pa.table({"frequency": [1, 2, 3] * 10})
    with pytest.raises(SegmentError, match=r"k=4 is more than the 3 distinct rows"):
        fit_clusters(table, ["frequency"], k=4)


def test_few_distinct_rows_shorten_the_curve() -> None:
    table = pa.table({"frequency": [1, 2, 9] * 10})
    result = fit_clusters(table, ["frequency"])
    assert list(result.curve) == [2, 3]
    assert result.k == 3
    assert "only 3 distinct rows: tried k=2..3 instead of 2..8" in result.warnings


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"features": "recency_days,monetary"}, "not one string"),
        ({"features": []}, "no features given"),
        ({"features": ["monetary", "monetary"]}, "features named more than once: monetary"),
        ({"log": ["frequency"]}, "log names 'frequency', which is not among the features"),
        ({"k_range": (3, 9)}, "k_range must lie within 2..8"),
        ({"sample_size": 10}, "sample_size must be at least 100"),
        ({"seed": -1}, "seed must be an integer"),
    ],
)
def test_unusable_options_are_refused(
    three: tuple[pa.Table, np.ndarray, ClusterResult], options: dict, message: str
) -> None:
    table, _, _ = three
    with pytest.raises(SegmentError, match=message):
        fit_clusters(table, **{"features": ["monetary"], **options})


def test_log_of_negative_values_is_refused() -> None:
    table = pa.table({"balance": np.linspace(-5, 100, 50)})
    with pytest.raises(SegmentError, match=r"log1p needs non-negative values; 'balance' goes down to -5"):
        fit_clusters(table, ["balance"], log=["balance"])


def test_a_feature_with_no_values_is_refused() -> None:
    table = pa.table({"monetary": np.arange(20.0), "aov": pa.nulls(20, pa.float64())})
    with pytest.raises(SegmentError, match=r"'aov' has no values \(every row is NULL\)"):
        fit_clusters(table, ["monetary", "aov"])


def test_without_scikit_learn_the_install_line_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    table = pa.table({"monetary": np.arange(20.0)})
    with pytest.raises(ClusteringUnavailable, match=r"pip install 'patron\[cluster\]'"):
        fit_clusters(table, ["monetary"])


def test_a_tiny_cluster_is_too_small_to_act_on() -> None:
    table, _ = rfm_groups(TYPICAL, LAPSED, (8, 5, 40, 20000))  # 8 of 608 rows: 1.3%
    result = fit_clusters(table, RFM, log=LOG, k=3)
    assert result.sizes == [350, 250, 8]
    assert f"{result.names[2]!r} has 8 rows (1.3%), too small to act on; try a smaller k" in result.warnings


def test_a_constant_feature_is_flagged_not_fatal() -> None:
    table, truth = rfm_groups(TYPICAL, LAPSED, WHALES)
    table = table.append_column("country_count", pa.array([1] * table.num_rows))
    result = fit_clusters(table, [*RFM, "country_count"], log=LOG)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) >= 0.99
    assert (
        "'country_count' is constant (every row is 1); it cannot separate customers, drop it"
        in result.warnings
    )
    assert not any("country" in name for name in result.names)


def test_one_cluster_holding_over_90_percent_is_flagged() -> None:
    rng = np.random.default_rng(2)
    spend = np.concatenate([rng.normal(50, 5, 950), rng.normal(5000, 50, 50)])
    result = fit_clusters(pa.table({"monetary": spend}), ["monetary"], k=2)
    assert result.sizes == [950, 50]
    assert any(w.startswith("'typical customers' holds 95% of rows") for w in result.warnings)


def test_noise_is_flagged_as_weak_structure() -> None:
    rng = np.random.default_rng(3)
    table = pa.table({f"f{i}": rng.normal(0, 1, 600) for i in range(5)})
    result = fit_clusters(table, table.column_names)
    assert result.curve[result.k] < 0.25
    assert any(w.startswith("weak structure: the clusters overlap") for w in result.warnings)


def test_names_are_unique_when_clusters_say_the_same() -> None:
    rng = np.random.default_rng(4)
    table = pa.table({"score": np.repeat(np.arange(6) * 10.0, 100) + rng.normal(0, 0.5, 600)})
    result = fit_clusters(table, ["score"], k=6)
    assert len(set(result.names)) == 6
    assert result.names == [
        "low score",
        "low score (2)",
        "typical customers",
        "typical customers (2)",
        "high score",
        "high score (2)",
    ]  # equal sizes: ordered by centre, so "(2)" is the one further right


def test_as_json_is_plain_and_serialisable(three: tuple[pa.Table, np.ndarray, ClusterResult]) -> None:
    _, _, result = three
    data = result.as_json()
    assert "labels" not in data
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["k"] == 3 and type(data["k"]) is int
    assert list(data["curve"]) == [str(k) for k in range(2, 9)]
    assert all(type(score) is float for score in data["curve"].values())
    assert all(type(size) is int for size in data["sizes"])
    assert all(type(value) is float for center in data["centers"] for value in center.values())
    assert data["names"] == result.names


def test_a_tie_on_the_curve_goes_to_the_smaller_k(
    three: tuple[pa.Table, np.ndarray, ClusterResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    table, _, _ = three
    monkeypatch.setattr(clustering, "_silhouette", lambda *args: 0.5)  # every k scores the same
    result = fit_clusters(table, RFM, log=LOG, k_range=(3, 6))
    assert result.curve == {3: 0.5, 4: 0.5, 5: 0.5, 6: 0.5}
    assert result.k == 3


def test_outliers_do_not_set_the_scale() -> None:
    # Two groups 10 apart on `visits` plus a few absurd values: scaled by the standard deviation
    # (about 1,000) the groups would melt together and the noise in `tenure` would decide the split.
    rng = np.random.default_rng(5)
    visits = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 1, 100), np.full(6, 10_000.0)])
    table = pa.table({"visits": visits, "tenure": rng.normal(0, 1, 606)})
    truth = np.repeat([0, 1, 2], [500, 100, 6])
    result = fit_clusters(table, ["visits", "tenure"], k=3)
    assert adjusted_rand_score(truth, result.labels) >= 0.99
