"""The data-quality report: how much of the customer data can actually be used.

Problems, each as a share of profiles with up to five examples:

``missing_email`` / ``missing_phone``   no value at all (no identifier, no trait)
``invalid_email`` / ``invalid_phone``   a value that does not normalise (see identifiers.py)
``malformed_dates``                     ``birthday`` or ``createdAt`` that is not a date
``impossible_ages``                     ``age`` (or the age a birthday gives) below 0 or over 120
``stale``                               no event in the ``stale_days`` before the store's latest event
``uncontactable``                       neither a valid email nor a valid phone

``suspected_duplicates``                profiles in a pair the probabilistic matcher put up for
                                        review (``patron identity match``; empty until it ran)

A profile is **unusable** when it is uncontactable, or has a malformed date or an
impossible age. Messages rejected at collection are reported beside them (their share of
everything received, and the commonest reasons).
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from patron.identity.identifiers import EMAIL, PHONE, Identifier, IdentifierRules
from patron.identity.probable import PROBABLE
from patron.identity.service import IDENTIFIERS
from patron.profiles.exceptions import ProfilesNotBuilt
from patron.profiles.service import COMPUTED, TRAITS
from patron.store.base import Store

EXAMPLES = 5
_DATE_TRAITS = ("birthday", "createdAt")


@dataclass
class Problem:
    profiles: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, profile_id: str, value: Any = None) -> None:
        self.profiles += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"profile_id": profile_id, "value": value})


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    for parse in (lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")).date(), lambda t: datetime.strptime(t, "%Y%m%d").date()):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def quality_report(store: Store, rules: IdentifierRules, *, stale_days: int = 365) -> dict[str, Any]:
    """The report as plain data (the CLI prints it, ``--json`` dumps it)."""
    if not store.has_table(COMPUTED):
        raise ProfilesNotBuilt()
    computed = store.to_pyarrow(store.table(COMPUTED).select("profile_id", "last_seen")).to_pylist()
    profiles = [r["profile_id"] for r in computed]
    total = len(profiles)
    identifiers = store.table(IDENTIFIERS)
    contact_ids = store.to_pyarrow(
        identifiers.filter(identifiers.identifier_type.isin([EMAIL, PHONE])).select("profile_id", "identifier_type")
    ).to_pylist()
    has_valid: dict[str, set[str]] = {}
    for row in contact_ids:
        has_valid.setdefault(row["profile_id"], set()).add(row["identifier_type"])
    traits = store.table(TRAITS)
    wanted = store.to_pyarrow(
        traits.filter(traits.trait.isin([EMAIL, PHONE, "age", *_DATE_TRAITS])).select("profile_id", "trait", "value")
    ).to_pylist()
    values: dict[str, dict[str, Any]] = {}
    for row in wanted:
        values.setdefault(row["profile_id"], {})[row["trait"]] = orjson.loads(row["value"])

    problems = {name: Problem() for name in (
        "missing_email", "invalid_email", "missing_phone", "invalid_phone",
        "malformed_dates", "impossible_ages", "stale", "uncontactable",
    )}
    unusable = Problem()
    latest = max((r["last_seen"] for r in computed if r["last_seen"] is not None), default=None)
    stale_before = latest - timedelta(days=stale_days) if latest else None
    today = (latest or datetime.now()).date()
    for row in computed:
        profile = row["profile_id"]
        own = values.get(profile, {})
        valid = set(has_valid.get(profile, set()))
        bad = False
        for kind in (EMAIL, PHONE):
            value = own.get(kind)
            if value is None and kind not in valid:
                problems[f"missing_{kind}"].add(profile)
            elif value is not None and not isinstance(rules.normalise(kind, value), Identifier):
                problems[f"invalid_{kind}"].add(profile, value)
                valid.discard(kind)
        if not valid:
            problems["uncontactable"].add(profile)
            bad = True
        born: date | None = None
        for name in _DATE_TRAITS:
            if name in own:
                parsed = _parse_date(own[name])
                if parsed is None:
                    problems["malformed_dates"].add(profile, {name: own[name]})
                    bad = True
                elif name == "birthday":
                    born = parsed
        age = own.get("age")
        if isinstance(age, str):
            with suppress(ValueError):  # a string that is no number stays one: impossible
                age = float(age)
        if age is None and born is not None:
            age = (today - born).days // 365
        if age is not None and (not isinstance(age, int | float) or isinstance(age, bool) or not 0 <= age <= 120):
            problems["impossible_ages"].add(profile, age)
            bad = True
        if stale_before is not None and row["last_seen"] is not None and row["last_seen"] < stale_before:
            problems["stale"].add(profile, row["last_seen"].isoformat())
        if bad:
            unusable.add(profile)

    problems["suspected_duplicates"] = Problem()
    if store.has_table(PROBABLE):
        probable = store.table(PROBABLE)
        pending = store.to_pyarrow(probable.filter(probable.status == "review")).to_pylist()
        profile_of = {
            (r["identifier_type"], r["identifier_value"]): r["profile_id"]
            for r in store.to_pyarrow(identifiers.select("identifier_type", "identifier_value", "profile_id")).to_pylist()
        }
        flagged: dict[str, str] = {}
        for pair in pending:
            ends = [profile_of.get((pair["a_type"], pair["a_value"])), profile_of.get((pair["b_type"], pair["b_value"]))]
            if None in ends or ends[0] == ends[1]:
                continue
            for mine, other in (ends, ends[::-1]):
                flagged.setdefault(str(mine), str(other))
        for profile, other in sorted(flagged.items()):
            problems["suspected_duplicates"].add(profile, {"maybe_same_as": other})

    failed = store.failed_events()
    failed_total = int(store.execute(failed.count()))
    reasons = Counter(r["reason"] for r in store.to_pyarrow(failed.select("reason")).to_pylist())
    received = int(store.execute(store.events().count())) + failed_total

    def share(n: int, of: int) -> float:
        return round(n / of, 4) if of else 0.0

    return {
        "profiles": total,
        "problems": {
            name: {"profiles": p.profiles, "share": share(p.profiles, total), "examples": p.examples}
            for name, p in problems.items()
        },
        "unusable": {"profiles": unusable.profiles, "share": share(unusable.profiles, total), "examples": unusable.examples},
        "rejected_messages": {
            "messages": failed_total,
            "share_of_received": share(failed_total, received),
            "top_reasons": [{"reason": r, "messages": n} for r, n in reasons.most_common(EXAMPLES)],
        },
        "stale_days": stale_days,
    }
