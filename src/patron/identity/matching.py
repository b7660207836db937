"""Probabilistic matching: which records that share no identifier are one person.

CRM exports often hold the same customer twice with no common id: a typo in the name,
a new email, a missing birthday. :class:`ProbabilisticMatcher` scores pairs of such
records with a Fellegi-Sunter model (Splink), on the store's own engine:

1. the records are cleaned (:mod:`patron.identity.matching_input` lists the columns it
   reads and how values are normalised);
2. a model is built from the columns present (:mod:`patron.identity.matching_model`:
   comparisons, blocking rules);
3. its parameters are estimated from the records themselves, with no labels: the share
   of matching pairs by counting pairs that deterministic rules link, the u
   probabilities from random pairs (a fixed seed), the m probabilities by expectation
   maximisation;
4. candidate pairs are scored; each pair gets a match weight (log2 of the Bayes factor)
   and a match probability.

Pairs at or above ``match_threshold`` are ``match`` (the identity graph links them);
pairs at or above ``review_threshold`` but below ``match_threshold`` are ``review``
(a person accepts or rejects them); the rest are not returned. Both thresholds are
**match probabilities**. The same records give the same pairs and weights: the random
sample is seeded, every other step is deterministic, and weights are rounded to 1e-6
so that the order of floating-point sums on several threads cannot move them.

Examples:
    >>> matcher = ProbabilisticMatcher(store)                  # doctest: +SKIP
    >>> result = matcher.match(records, on=["national_id"])    # doctest: +SKIP
    >>> result.pairs.column_names                              # doctest: +SKIP
    ['record_id_l', 'record_id_r', 'match_weight', 'match_probability', 'decision', 'weights']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.exceptions import ConfigError
from patron.identity import matching_model as model
from patron.identity.matching_input import FULL_NAME, PreparedRecords, prepare_records
from patron.identity.splink_library import load_splink

if TYPE_CHECKING:
    from patron.store.base import Store

_log = logging.getLogger(__name__)

MATCH = "match"
REVIEW = "review"

#: The columns of :attr:`MatchResult.pairs`.
PAIR_SCHEMA = pa.schema(
    [
        pa.field("record_id_l", pa.string(), nullable=False),
        pa.field("record_id_r", pa.string(), nullable=False),
        pa.field("match_weight", pa.float64(), nullable=False),
        pa.field("match_probability", pa.float64(), nullable=False),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("weights", pa.map_(pa.string(), pa.float64())),
    ]
)


@dataclass(frozen=True)
class MatchSettings:
    """How the probabilistic matcher decides; defaults chosen by measurement.

    Thresholds are match probabilities (the posterior that the two records are one
    person, given the prior share of matching pairs and the evidence). Pairwise
    precision / recall measured with ``bench/match_febrl.py --sweep`` (FEBRL3) and
    ``bench/match_generated.py --records 1000000`` (generated people, 10% duplicates):

    ===============  ==================  ==================
    match threshold  FEBRL3              generated, 1M
    ===============  ==================  ==================
    0.1              0.9995 / 0.994      0.982 / 0.975
    0.5 (default)    1.000 / 0.993       0.996 / 0.956
    0.9              1.000 / 0.987       0.9997 / 0.922
    0.99             1.000 / 0.980       1.000 / 0.855
    ===============  ==================  ==================

    0.5 is where a pair becomes more likely one person than two: precision stays above
    0.99 on both sets, F1 is within 0.003 of the best threshold's, and it is the
    highest threshold that keeps FEBRL3's pairwise recall above 0.99. The pairs just
    under it (from 0.1) go to review rather than being dropped.

    Attributes:
        match_threshold: match probability at or above which a pair is a ``match``.
        review_threshold: match probability at or above which a pair below
            ``match_threshold`` is listed for ``review``.
        seed: seed of the random sample that estimates the u probabilities.
        u_max_pairs: random pairs sampled to estimate the u probabilities.
        em_max_pairs: at most this many blocked pairs per expectation-maximisation
            session (a deterministic, hash-based sample of records when there are more).
        deterministic_recall: the share of true matches the deterministic rules
            (same name and birthday, same email, same custom id) are assumed to find;
            it scales the estimated share of matching pairs. They found about 0.9 of
            the true pairs on FEBRL3 and on the generated people.
        broad_rule_max_pairs: the broad blocking rules (a postcode and one name, the
            birthday and the state, swapped names) are used only while each blocks at
            most this many candidate pairs
            (:func:`patron.identity.matching_model.prediction_rules`): on FEBRL3 they
            add 0.007 of recall; on 1,000,000 generated people they would add 5.2
            million pairs (most of the scoring time) for 0.0005 of recall.
    """

    match_threshold: float = 0.5
    review_threshold: float = 0.1
    seed: int = 42
    u_max_pairs: float = 1e6
    em_max_pairs: float = 1e6
    deterministic_recall: float = 0.9
    broad_rule_max_pairs: float = 250_000

    def __post_init__(self) -> None:
        for name in ("match_threshold", "review_threshold", "deterministic_recall"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"matching {name} must be a probability in (0, 1], not {value!r}")
        if self.review_threshold > self.match_threshold:
            raise ConfigError(
                f"the review threshold ({self.review_threshold}) is above the match threshold "
                f"({self.match_threshold}); review lists the pairs just below a match"
            )


@dataclass(frozen=True)
class MatchResult:
    """What one matching run found.

    Attributes:
        pairs: one row per pair at or above the review threshold (:data:`PAIR_SCHEMA`),
            ``record_id_l < record_id_r``, sorted by the two ids: ``decision`` is
            ``match`` or ``review``; ``weights`` maps each comparison (``first_name``,
            ``address``, or a custom trait's name) to the match weight it added, which
            explains the pair.
        model: the trained Splink model (a settings dictionary, JSON-serialisable).
        traits: the traits the model compared (standard and custom names).
    """

    pairs: pa.Table
    model: dict[str, Any] = field(repr=False)
    traits: tuple[str, ...]

    @property
    def matches(self) -> pa.Table:
        """The pairs at or above the match threshold."""
        return self.pairs.filter(pc.equal(self.pairs["decision"], MATCH))

    @property
    def reviews(self) -> pa.Table:
        """The pairs between the review and the match threshold."""
        return self.pairs.filter(pc.equal(self.pairs["decision"], REVIEW))


class ProbabilisticMatcher:
    """Scores pairs of person records with a model estimated from the records themselves.

    Args:
        store: the store whose engine runs the model (``Store.splink_api``); the
            working tables live apart from the store's own and are dropped afterwards.
        settings: thresholds and estimation settings.
    """

    def __init__(self, store: Store, settings: MatchSettings | None = None) -> None:
        self._store = store
        self.settings = settings or MatchSettings()

    def match(self, records: pa.Table, on: Sequence[str] = ()) -> MatchResult:
        """Score every candidate pair of ``records``; see the module docstring.

        Args:
            records: ``record_id`` and trait columns
                (:mod:`patron.identity.matching_input`).
            on: custom traits (columns of ``records``) compared as identifiers that may
                hold typos, such as a national id.

        Returns:
            The pairs at or above the review threshold, and the trained model.

        Raises:
            InvalidMatchInput: the records lack ``record_id``, repeat one, or hold no trait
                to compare.
            MatchingUnavailable: Splink is not installed.
        """
        prepared = prepare_records(records, on)
        splink = load_splink()
        with self._store.splink_api() as db_api:
            try:
                return self._run(splink, db_api, prepared)
            finally:
                db_api.delete_tables_created_by_splink_from_db()

    def _run(self, splink: Any, db_api: Any, prepared: PreparedRecords) -> MatchResult:
        s = self.settings
        columns = list(prepared.columns)
        custom = prepared.custom
        settings = splink.SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="record_id",
            comparisons=model.comparisons(columns, custom),
            blocking_rules_to_generate_predictions=model.prediction_rules(
                columns, custom, prepared.table, s.broad_rule_max_pairs
            ),
            retain_matching_columns=False,
            retain_intermediate_calculation_columns=True,
        )
        extra = [c for c in (FULL_NAME,) if c in prepared.table.column_names]
        records = db_api.register(prepared.table.select(["record_id", *columns, *extra]))
        quiet = _QuietSplink()
        with quiet:
            linker = splink.Linker(records, settings, log_level=None)
            training = linker.training
            training.estimate_probability_two_random_records_match(
                model.deterministic_rules(columns, custom), recall=s.deterministic_recall
            )
            training.estimate_u_using_random_sampling(max_pairs=s.u_max_pairs, seed=s.seed, num_chunks=1)
            for rule in model.training_rules(columns, custom):
                _expectation_maximisation(linker, rule, s.em_max_pairs)
            review_weight = _weight(s.review_threshold)
            predictions = linker.inference.predict(threshold_match_weight=review_weight, warning_mode="never")
            scored = predictions.as_pyarrow_table()
            trained = linker.misc.save_model_to_json()
        pairs = _pairs(scored, prepared, s)
        return MatchResult(pairs=pairs, model=trained, traits=tuple(prepared.columns.values()))


def _expectation_maximisation(linker: Any, rule: Any, max_pairs: float) -> None:
    """One EM session; on too few pairs, keep the parameters from before it.

    With few records a rule may block no pair, or EM may drive an m probability to
    exactly 0, which Splink 5.0 refuses mid-session after it has already narrowed the
    linker's comparisons to those the session trains: the settings are restored from a
    copy, and the comparisons keep their earlier (or default) m probabilities.
    """
    from splink.internals.exceptions import SplinkException

    settings = linker._settings_obj
    saved = settings.core_model_settings.copy()
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=max_pairs
        )
    except (ValueError, SplinkException) as error:
        settings.core_model_settings = saved
        _log.info("an expectation-maximisation session was skipped: %s", str(error).split("\n")[0])


def _weight(probability: float) -> float:
    if probability >= 1:
        return math.inf
    return math.log2(probability / (1 - probability))


def _pairs(scored: pa.Table, prepared: PreparedRecords, s: MatchSettings) -> pa.Table:
    weight = pc.round(scored["match_weight"], 6)
    probability = pc.round(scored["match_probability"], 9)
    keep = pc.greater_equal(probability, s.review_threshold)
    left, right = scored["record_id_l"], scored["record_id_r"]
    swap = pc.greater(left, right)
    lo, hi = pc.if_else(swap, right, left), pc.if_else(swap, left, right)
    decision = pc.if_else(pc.greater_equal(probability, s.match_threshold), MATCH, REVIEW)
    labels = {f"mw_{column}": trait for column, trait in {**prepared.columns, "name": "name", "address": "address"}.items()}
    parts = [(name, labels[name]) for name in scored.column_names if name in labels]
    weights = _weights_map(scored, parts)
    table = pa.table(
        {
            "record_id_l": lo,
            "record_id_r": hi,
            "match_weight": weight,
            "match_probability": probability,
            "decision": decision,
            "weights": weights,
        }
    ).filter(keep)
    table = table.sort_by([("record_id_l", "ascending"), ("record_id_r", "ascending")])
    return table.cast(PAIR_SCHEMA)


def _weights_map(scored: pa.Table, parts: list[tuple[str, str]]) -> pa.Array:
    """``{comparison: match weight}`` per pair, from Splink's per-comparison weights."""
    rows = scored.num_rows
    columns = []
    for name, _ in parts:
        weight = pc.cast(scored[name], pa.float64())
        tf_name = "mw_tf_adj_" + name.removeprefix("mw_")
        if tf_name in scored.column_names:
            weight = pc.add(weight, pc.fill_null(pc.cast(scored[tf_name], pa.float64()), 0.0))
        columns.append(pc.round(weight, 6).to_numpy(zero_copy_only=False))
    width = len(parts)
    values = np.column_stack(columns).ravel() if width else np.zeros(0)
    keys = pa.array([label for _, label in parts] * rows, pa.string())
    offsets = pa.array(np.arange(0, rows * width + 1, width or 1)[: rows + 1], pa.int32())
    return pa.MapArray.from_arrays(offsets, keys, pa.array(values, pa.float64(), from_pandas=True))


class _QuietSplink:
    """Splink logs its progress at INFO and warns about sampling choices; keep it quiet."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("splink")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)
