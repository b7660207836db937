"""Evaluating dynamic segments on 1 M profiles and 20 M events (issue 5's figures).

    .venv/bin/python -m bench.segments_eval                      # 5 copies: 24 M events, 1.1 M profiles
    .venv/bin/python -m bench.segments_eval --events 4800000 --profiles 0   # one copy, quick

The store is copies of the 4.8 M-event collected one (``bench.spark_build``: each copy a
new population, ids and emails renamed), as many as ``--events`` and ``--profiles`` ask
for, built in full once (facts, identity, profiles; timed and reported, not a target)
and kept in bench/results/ for later runs, each of which works on a copy of it. Then:

1. the 20 segments of :data:`SEGMENTS` (traits, computed traits, RFM, behavioral
   conditions, a funnel, ``in_segment``) created one by one (each ``create`` evaluates
   its segment: timed per segment), then, with every membership and entry removed, one
   ``refresh(full=True)`` of all 20, timed: the issue's "20 dynamic segments from
   scratch". Measured twice: first with the index of message properties dropped as well
   ("cold": the refresh reads the survey answers from the log again), then three times
   with the index the creates filled (as a deployment has it once its segments are
   saved; the median is the figure, the machine's speed varying by a fifth); the
   materialisation of the attributed events it starts with is timed apart;
2. the same 20 segments computed "the straightforward way" in pandas in a child process
   (tables loaded whole with the needed columns, then masks, groupbys and merges; RFM
   scores from ``patron.segments.rfm.rfm_scores``, as an analyst would use a library):
   load and compute timed apart, sizes and member sets checked against Patron's;
3. 10,000 new events (orders, email engagement, surveys, page views and trait changes of
   existing customers, a few new customers) stored through the collector, then the
   incremental ``profiles.build()`` and ``segments.refresh(build=False)``, each timed;
   then a full refresh over the result must find no entry and no exit (the incremental
   result equals a full evaluation).

Evaluation instant: fixed at :data:`AS_OF` (``segments.as_of`` and ``segments.clock``),
just after the generated history ends, so relative dates and windows fall in the data
and the clock does not move between the refreshes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine, system_cpu_s, vm_hwm_kib
from bench.profiles_build import SEED, load
from bench.spark_build import _collected, _write_copies, counts, stages
from patron.config import Settings
from patron.demo.synthetic import synthetic_events
from patron.workspace import Workspace

#: The evaluation instant: the generated history (2024) ends the evening before.
AS_OF = datetime(2025, 1, 1, 0, 0, 0)

# -- the store ------------------------------------------------------------------------


def _customers_per_copy(base: Path) -> int:
    import duckdb  # bench code: counts the collected store directly

    with duckdb.connect(str(base), read_only=True) as con:
        row = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchone()
    return int(row[0]) if row else 0


def copies_for(events: int, profiles: int) -> int:
    """Copies of the collected store that give at least ``profiles`` customers and about
    ``events`` events."""
    base, size, _ = _collected()
    by_events = max(1, round(events / size))
    by_profiles = math.ceil(profiles / max(1, _customers_per_copy(base))) if profiles else 1
    return max(by_events, by_profiles)


def _advance_event_seq(path: Path) -> None:
    """Move the log's ``seq`` sequence past the copied events: the copies are inserted
    with their own ``seq`` (``_write_copies``), which leaves ``event_seq`` at its start,
    so events stored later would reuse the copies' numbers (below the facts watermark:
    neither extracted nor built). Idempotent, and checked from a new connection: DuckDB
    1.5 keeps only the first of many ``nextval`` of one autocommitted statement."""
    import duckdb

    def next_value(con: duckdb.DuckDBPyConnection) -> int:
        return int((con.execute("SELECT nextval('event_seq')").fetchone() or (0,))[0])

    with duckdb.connect(str(path)) as con:
        top = int((con.execute("SELECT max(seq) FROM events").fetchone() or (0,))[0] or 0)
        con.execute("BEGIN TRANSACTION")
        now = next_value(con)
        if now <= top:
            con.execute(f"SELECT max(nextval('event_seq')) FROM range({top - now + 1})")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    with duckdb.connect(str(path)) as con:
        if (reached := next_value(con)) <= top:
            raise RuntimeError(f"event_seq is at {reached}, not past the copied events' {top}")


def built_store(copies: int) -> tuple[Path, dict[str, Any] | None]:
    """The store of ``copies`` copies with facts, identity and profiles built in full,
    made once and kept; the build's figures when it was made by this call."""
    path = RESULTS / f"segments-base-{copies}x.duckdb"
    if path.exists():
        _advance_event_seq(path)  # stores made before the fix
        return path, None
    unbuilt = RESULTS / f"segments-base-{copies}x-events.duckdb"
    if not unbuilt.exists():
        _write_copies(unbuilt, range(copies))
    _advance_event_seq(unbuilt)
    with Workspace(Settings(store=unbuilt)) as ws:
        times, report = stages(ws)
        ws.store.checkpoint()
        built = {**times, "profiles": report.profiles, "counts": counts(ws),
                 "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip
    unbuilt.rename(path)
    path.with_suffix(".build.json").write_text(json.dumps(built, indent=2))
    return path, built



# -- the segments ---------------------------------------------------------------------

#: 20 dynamic segments as a marketer would write them for this data (traits of identify
#: calls, computed traits, RFM, orders and email engagement), in creation order: those
#: used by ``in_segment`` first. One reads a message property (``nps_promoters``: the
#: JSON of the survey messages, read at evaluation), the others read typed columns only.
#: Page calls have no event name (``event`` is NULL for them), so no behavioral
#: condition can name them: none here does.
SEGMENTS: dict[str, str] = {
    "us_over_30": "address.country = 'US' AND age >= 30",
    "young_women_one_order": "gender = 'female' AND age BETWEEN 18 AND 29 AND performed('Order Completed', count < 2)",
    "search_acquired_repeat": "acquisitionChannel = 'google' AND order_count >= 2",
    "high_value": "total_revenue >= 400",
    "recent_buyers": "last_order_at >= -30d",
    "lapsed_repeat": "order_count >= 2 AND last_order_at < -180d",
    "champions": "rfm_group = 'Champions'",
    "at_risk": "rfm_group IN ('At Risk', 'Hibernating')",
    "loyal_recent": "r_score >= 4 AND f_score >= 4",
    "frequent_180d": "performed('Order Completed', count >= 2, within 180d)",
    "jazz_big_order": "performed('Order Completed', where revenue > 100 AND category = 'Jazz')",
    "email_engaged": "performed('Email Opened', count >= 2, within 90d)",
    "email_ignorers": "performed('Email Delivered', within 60d) AND not performed('Email Opened', within 60d)",
    "new_customers": "first performed('Order Completed', within 60d)",
    "churned": "stopped performing('Order Completed', for 180d)",
    "reactivated": "restarted performing('Order Completed', after 90d, within 90d)",
    "click_to_order": "performed('Email Link Clicked') then performed('Order Completed') within 14d",
    "nps_promoters": "performed('Survey Response Submitted', where properties.nps_category = 'promoter')",
    "vip_us": "in_segment('high_value') AND in_segment('us_over_30')",
    "win_back": "in_segment('churned') AND NOT in_segment('email_engaged')",
}


def _fixed_clock(ws: Workspace) -> None:
    # Not refresh(as_of=...): that forces time-dependent segments to a full evaluation.
    ws.segments.as_of = AS_OF
    ws.segments.clock = lambda: AS_OF


def timed(action: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - began, 2)


def _own_cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def metered(action: Any, into: dict[str, float], label: str) -> tuple[Any, float]:
    """:func:`timed`, and in ``into[label]`` the share of the machine's CPU that other
    processes (other sessions' tests) used meanwhile: a figure measured beside them is slower."""
    busy0, total0 = system_cpu_s()
    own0 = _own_cpu_s()
    result, seconds = timed(action)
    busy1, total1 = system_cpu_s()
    other = (busy1 - busy0) - (_own_cpu_s() - own0)
    into[label] = round(max(0.0, other) / max(1e-9, total1 - total0), 2)
    return result, seconds


def _sizes(report: Any) -> dict[str, int]:
    return {name: int(entry["size"]) for name, entry in report.segments.items()}


def _changes(report: Any) -> dict[str, int]:
    return {
        "entered": sum(int(e["entered"]) for e in report.segments.values()),
        "exited": sum(int(e["exited"]) for e in report.segments.values()),
    }


def from_scratch(ws: Workspace) -> dict[str, Any]:
    """Create the segments (each evaluated once), then the full refreshes, timed."""
    from patron.segments.properties import PROPERTIES
    from patron.segments.service import HISTORY, HISTORY_SCHEMA, MEMBERS, MEMBERS_SCHEMA
    from patron.store.base import Drop, Replace

    _fixed_clock(ws)
    segments = ws.segments
    create_s = {}
    for name, query in SEGMENTS.items():
        _, create_s[name] = timed(lambda n=name, q=query: segments.create(n, q))
    # From scratch: the definitions exist, nobody is a member yet (a first deployment);
    # the refresh evaluates all 20 and writes every entry. Twice: "cold", with the index
    # of message properties (segments/properties.py) dropped too, so the refresh fills
    # it again from the log; then with the index the creates made, as a deployment has it.
    empty = [Replace(MEMBERS, MEMBERS_SCHEMA.empty_table()), Replace(HISTORY, HISTORY_SCHEMA.empty_table())]
    other: dict[str, float] = {}
    ws.store.write([*empty, Drop(PROPERTIES)])
    cold, cold_s = metered(lambda: segments.refresh(full=True, build=False), other, "full_refresh_cold")
    # Three times (the machine's speed varies by a fifth between runs): each run's
    # figure is kept, the median is the result.
    runs = []
    for _ in range(3):
        ws.store.write(empty)
        first, seconds = metered(lambda: segments.refresh(full=True, build=False), other, "full_refresh")
        runs.append(seconds)
    first_s = sorted(runs)[1]
    # The same over memberships already current: the evaluation with (almost) no writes.
    again, again_s = metered(lambda: segments.refresh(full=True, build=False), other, "full_refresh_again")
    sizes = _sizes(first)
    profiles = int(ws.store.execute(ws.store.table("profile_computed").count()))
    return {
        "create_s": create_s,
        "create_total_s": round(sum(create_s.values()), 2),
        "full_refresh_cold_index_s": cold_s,
        "full_refresh_cold_index_entries": _changes(cold)["entered"],
        "full_refresh_s (median of 3)": first_s,
        "full_refresh_runs_s": runs,
        "full_refresh_entries": _changes(first)["entered"],
        "full_refresh_again_s": again_s,
        "full_refresh_again_changes": _changes(again),
        "sizes": sizes,
        "shares": {n: round(s / profiles, 4) for n, s in sizes.items()},
        "empty_segments": [n for n, s in sizes.items() if s == 0],
        "other_processes_cpu_share": other,
    }


def where_time_goes(ws: Workspace) -> dict[str, Any]:
    """Diagnosis (not a target): the full refresh's parts run one by one. The attributed
    events of all 20 queries materialised once, as the refresh does; then each segment's
    query counted over them. Uses the service's internals on purpose."""
    from patron.segments.compiler import Compiler, Requirements

    segments = ws.segments
    catalogue = segments.catalogue()
    checked = {name: segments.check(query, catalogue) for name, query in SEGMENTS.items()}
    combined = Requirements()
    for _, needs in checked.values():
        combined.update(needs)
    backend = ws.store._ibis  # type: ignore[attr-defined]  # a temp table on the store's own connection
    plain = Requirements(event_fields=set(combined.event_fields), event_windows=combined.event_windows, events=True)
    _, plain_s = timed(lambda: backend.create_table("bench_events_plain", segments._events_expression(plain, AS_OF), temp=True))
    events, events_s = timed(lambda: backend.create_table("bench_events", segments._events_expression(combined, AS_OF), temp=True))
    rows = int(ws.store.execute(events.count()))
    backend.drop_table("bench_events_plain")
    compiler = Compiler(catalogue, AS_OF, segments.anniversaries)
    per_segment = {}
    for name, (condition, needs) in checked.items():
        sources = segments._sources(needs, AS_OF, events=events if needs.events else None)
        _, per_segment[name] = timed(lambda c=condition, s=sources: ws.store.execute(compiler.matching(c, s).count()))
    backend.drop_table("bench_events")
    return {
        "attributed_events_rows": rows,
        "attributed_events_s (the 20 queries' columns and the property)": events_s,
        "attributed_events_without_property_s": plain_s,
        "per_segment_over_materialised_events_s": per_segment,
        "per_segment_total_s": round(sum(per_segment.values()), 2),
    }


# -- the incremental path -------------------------------------------------------------

_CATEGORIES = ("Rock", "Pop", "Jazz", "Classical", "Hip-Hop", "Country", "Electronic", "Folk")


def new_batch(copies: int, customers: int, count: int = 10_000, seed: int = 5) -> list[dict[str, Any]]:
    """``count`` messages from the last days of the history (27-31 December 2024): orders,
    email clicks followed by an order, email opens, page views, survey answers and trait
    changes (age, address) of existing customers of every copy, and 10% from new
    customers (a whole year of their history each)."""
    rng = random.Random(seed)
    fresh = synthetic_events(max(count // 200, 1), seed=SEED + 1)
    messages: list[dict[str, Any]] = []

    def customer() -> str:
        return f"synthetic-{SEED}r{rng.randrange(copies)}-{rng.randrange(customers)}"

    def when() -> datetime:
        return datetime(2024, 12, rng.randint(27, 31), rng.randint(0, 21), rng.randint(0, 59), rng.randint(0, 59))

    def iso(at: datetime) -> str:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def order(user: str, at: datetime) -> dict[str, Any]:
        props = {"order_id": f"bench-{len(messages)}", "revenue": rng.randint(5, 250),
                 "category": rng.choice(_CATEGORIES), "currency": "USD"}  # fmt: skip
        return {"type": "track", "userId": user, "event": "Order Completed", "timestamp": iso(at), "properties": props}

    def track(user: str, event: str, at: datetime, **props: Any) -> dict[str, Any]:
        return {"type": "track", "userId": user, "event": event, "timestamp": iso(at), "properties": props}

    while len(messages) < count:
        roll, user, at = rng.random(), customer(), when()
        if roll < 0.30:
            messages.append(order(user, at))
        elif roll < 0.40:
            messages.append(track(user, "Email Link Clicked", at, campaign_id="campaign-bench"))
            messages.append(order(user, at + timedelta(minutes=rng.randint(5, 120))))
        elif roll < 0.60:
            messages.append(track(user, "Email Opened", at, campaign_id="campaign-bench"))
        elif roll < 0.72:
            messages.append({"type": "page", "userId": user, "name": "Home", "timestamp": iso(at)})
        elif roll < 0.77:
            category = rng.choice(("promoter", "passive", "detractor"))
            messages.append(track(user, "Survey Response Submitted", at, survey_id="nps-bench", nps_category=category))
        elif roll < 0.90:
            city, country = rng.choice((("Springfield", "US"), ("Toronto", "CA"), ("London", "GB")))
            traits = {"age": rng.randint(18, 75), "address": {"city": city, "country": country}}
            messages.append({"type": "identify", "userId": user, "timestamp": iso(at), "traits": traits})
        else:
            messages.extend(islice(fresh, 1))
    return messages[:count]


def incremental(ws: Workspace, copies: int, customers: int, added: int) -> dict[str, Any]:
    """A batch of new events, the incremental build and refresh, then the check."""
    _fixed_clock(ws)
    segments = ws.segments
    # The previous cycle of a service (build, then refresh, with nothing new): what one
    # process pays once (the build's declarations compiled for its fingerprint).
    _, idle_build_s = timed(lambda: ws.profiles.build())
    _, idle_refresh_s = timed(lambda: segments.refresh(build=False))
    batch = new_batch(copies, customers, added)
    _, store_s = timed(lambda: load(ws, iter(batch)))
    other: dict[str, float] = {}
    build, build_s = metered(lambda: ws.profiles.build(), other, "build")
    if not build.rebuilt:
        raise RuntimeError(f"the {added:,} new events changed no profile: were they stored above the watermark?")
    refreshed, refresh_s = metered(lambda: segments.refresh(build=False), other, "refresh")
    modes = sorted({e["mode"] for e in refreshed.segments.values()})
    # The check: a full evaluation over the result must change nothing.
    check, check_s = timed(lambda: segments.refresh(full=True, build=False))
    differ = {n: (e["entered"], e["exited"]) for n, e in check.segments.items() if e["entered"] or e["exited"]}
    return {
        "new_events": added,
        "store_s (collector, not a target)": store_s,
        "idle_cycle_s (build, refresh; nothing new)": [idle_build_s, idle_refresh_s],
        "profiles_build_incremental_s": build_s,
        "build_mode": build.mode,
        "profiles_computed": build.rebuilt,
        "profiles_merged": build.merged,
        "profiles_recomputed": build.recomputed,
        "segments_refresh_incremental_s": refresh_s,
        "refresh_mode": refreshed.mode,
        "segment_modes": modes,
        "changed_profiles": refreshed.changed_profiles,
        "entered": _changes(refreshed)["entered"],
        "exited": _changes(refreshed)["exited"],
        "per_segment_changes": {n: [e["entered"], e["exited"]] for n, e in refreshed.segments.items()},
        "incremental_total_s (build + refresh)": round(build_s + refresh_s, 2),
        "check_full_refresh_s": check_s,
        "check_differences (segment: entries, exits a full refresh still found)": differ,
        "incremental_equals_full": not differ,
        "sizes_after": _sizes(check),
        "other_processes_cpu_share": other,
    }


# -- pandas, the straightforward way --------------------------------------------------

#: The event names the 20 queries name.
_USED_EVENTS = ("Order Completed", "Email Opened", "Email Delivered", "Email Link Clicked", "Survey Response Submitted")
_TRAITS = ("age", "gender", "address", "acquisitionChannel")


def pandas_child(store: Path) -> dict[str, Any]:
    """The 20 segments in pandas, as an analyst would write them; in a child process
    (``--pandas STORE``) so that its memory is its own. Follows Patron's documented
    semantics (compiler.py): a missing value matches no clause, ``count < n`` includes
    zero, windows count back from the evaluation instant, relative dates are days."""
    import duckdb
    import ibis
    import pandas as pd

    from patron.segments.rfm import rfm_scores

    con = duckdb.connect(str(store), read_only=True)

    def frame(sql: str) -> pd.DataFrame:
        return con.sql(sql).arrow().read_all().to_pandas()

    loads: dict[str, float] = {}
    began = time.perf_counter()
    t0 = time.perf_counter()
    computed = frame("SELECT profile_id, order_count, total_revenue, last_order_at FROM profile_computed")
    names = ", ".join(f"'{t}'" for t in _TRAITS)
    traits = frame(f"SELECT profile_id, trait, value FROM profile_traits WHERE trait IN ({names})")
    loads["profiles_and_traits_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    ids = frame("SELECT identifier_type, identifier_value, profile_id FROM identity_identifiers "
                "WHERE identifier_type IN ('user_id', 'anonymous_id')")  # fmt: skip
    events = frame("SELECT seq, event, timestamp, user_id, anonymous_id, revenue, category FROM event_facts")
    events["event"] = events["event"].astype("category")
    events["category"] = events["category"].astype("category")
    loads["identifiers_and_events_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    surveys = frame("SELECT seq, raw FROM events WHERE event = 'Survey Response Submitted'")
    loads["survey_messages_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    # RFM from the library (patron.segments.rfm), its result loaded like a table.
    backend = ibis.duckdb.from_connection(con)
    rfm = rfm_scores(backend.table("profile_computed"), AS_OF).select("profile_id", "r_score", "f_score", "rfm_group")
    rfm_frame = rfm.to_pyarrow().to_pandas()
    loads["rfm_scores_s"] = round(time.perf_counter() - t0, 2)
    load_s = round(time.perf_counter() - began, 2)
    externals = int(con.sql("SELECT count(*) FROM event_facts WHERE external_id IS NOT NULL").fetchone()[0])  # type: ignore[index]

    steps: dict[str, float] = {}
    began = time.perf_counter()
    t0 = time.perf_counter()
    # The profile row: computed traits, the four traits decoded from JSON, the RFM scores.
    row = computed.set_index("profile_id")
    wide = traits.pivot(index="profile_id", columns="trait", values="value")
    row = row.join(wide).join(rfm_frame.set_index("profile_id"))
    row["age"] = pd.to_numeric(row["age"], errors="coerce")
    for name in ("gender", "acquisitionChannel"):
        row[name] = row[name].map(json.loads, na_action="ignore")
    row["country"] = row["address"].map(lambda a: json.loads(a).get("country"), na_action="ignore")
    steps["profile_row_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    # Attribution: the userId's profile, else the anonymousId's (no event here carries
    # an external id: ``externals`` is 0).
    by_user = ids[ids.identifier_type == "user_id"].set_index("identifier_value")["profile_id"]
    by_anon = ids[ids.identifier_type == "anonymous_id"].set_index("identifier_value")["profile_id"]
    ev = events[events["event"].isin(_USED_EVENTS) & (events["timestamp"] <= AS_OF)].copy()
    ev["profile_id"] = ev["user_id"].map(by_user).fillna(ev["anonymous_id"].map(by_anon))
    ev = ev[ev["profile_id"].notna()]
    steps["attribution_s"] = round(time.perf_counter() - t0, 2)

    as_of = pd.Timestamp(AS_OF)
    today = pd.Timestamp(AS_OF.date())

    def since(days: int) -> pd.Timestamp:
        return as_of - pd.Timedelta(days=days)

    def of(event: str) -> pd.DataFrame:
        return ev[ev["event"] == event]

    def at_least(frame_: pd.DataFrame, n: int) -> pd.Index:
        counted = frame_.groupby("profile_id").size()
        return counted.index[counted >= n]

    def ids_of(mask: pd.Series) -> set[str]:
        return set(mask.index[mask.fillna(False).astype(bool)])

    orders, opened, delivered = of("Order Completed"), of("Email Opened"), of("Email Delivered")
    last_day = row["last_order_at"].dt.normalize()  # a timestamp compared with a date: by its day

    def restarted() -> set[str]:
        o = orders.sort_values(["profile_id", "timestamp", "seq"])
        previous = o.groupby("profile_id")["timestamp"].shift()
        hit = previous.notna() & (o["timestamp"] >= since(90)) & (o["timestamp"] - previous >= pd.Timedelta(days=90))
        return set(o.loc[hit, "profile_id"])

    def funnel() -> set[str]:
        clicks = of("Email Link Clicked")[["profile_id", "timestamp"]].rename(columns={"timestamp": "start"})
        ends = orders[["profile_id", "timestamp"]].sort_values("timestamp")
        paired = pd.merge_asof(ends, clicks.sort_values("start"), left_on="timestamp", right_on="start",
                               by="profile_id", direction="backward")  # fmt: skip
        done = paired["start"].notna() & (paired["timestamp"] - paired["start"] <= pd.Timedelta(days=14))
        return set(paired.loc[done, "profile_id"])

    def promoters() -> set[str]:
        answers = surveys["raw"].map(lambda r: json.loads(r).get("properties", {}).get("nps_category"))
        seqs = surveys.loc[answers == "promoter", "seq"]
        return set(of("Survey Response Submitted").loc[lambda f: f["seq"].isin(seqs), "profile_id"])

    def first_within(days: int) -> set[str]:
        first = orders.groupby("profile_id")["timestamp"].min()
        return set(first.index[first >= since(days)])

    def stopped(days: int) -> set[str]:
        last = orders.groupby("profile_id")["timestamp"].max()
        return set(last.index[last < since(days)])

    found: dict[str, set[str]] = {}
    definitions: dict[str, Any] = {
        "us_over_30": lambda: ids_of((row["country"] == "US") & (row["age"] >= 30)),
        "young_women_one_order": lambda: ids_of(
            (row["gender"] == "female") & row["age"].between(18, 29) & ~row.index.isin(at_least(orders, 2))
        ),
        "search_acquired_repeat": lambda: ids_of((row["acquisitionChannel"] == "google") & (row["order_count"] >= 2)),
        "high_value": lambda: ids_of(row["total_revenue"] >= 400),
        "recent_buyers": lambda: ids_of(last_day >= today - pd.Timedelta(days=30)),
        "lapsed_repeat": lambda: ids_of((row["order_count"] >= 2) & (last_day < today - pd.Timedelta(days=180))),
        "champions": lambda: ids_of(row["rfm_group"] == "Champions"),
        "at_risk": lambda: ids_of(row["rfm_group"].isin(["At Risk", "Hibernating"])),
        "loyal_recent": lambda: ids_of((row["r_score"] >= 4) & (row["f_score"] >= 4)),
        "frequent_180d": lambda: set(at_least(orders[orders["timestamp"] >= since(180)], 2)),
        "jazz_big_order": lambda: set(orders.loc[(orders["revenue"] > 100) & (orders["category"] == "Jazz"), "profile_id"]),
        "email_engaged": lambda: set(at_least(opened[opened["timestamp"] >= since(90)], 2)),
        "email_ignorers": lambda: set(delivered.loc[delivered["timestamp"] >= since(60), "profile_id"])
        - set(opened.loc[opened["timestamp"] >= since(60), "profile_id"]),
        "new_customers": lambda: first_within(60),
        "churned": lambda: stopped(180),
        "reactivated": restarted,
        "click_to_order": funnel,
        "nps_promoters": promoters,
        "vip_us": lambda: found["high_value"] & found["us_over_30"],
        "win_back": lambda: found["churned"] - found["email_engaged"],
    }
    assert list(definitions) == list(SEGMENTS)
    per_segment: dict[str, float] = {}
    for name, define in definitions.items():
        found[name], per_segment[name] = timed(define)
    compute_s = round(time.perf_counter() - began, 2)
    peak_mib = round((vm_hwm_kib(os.getpid()) or 0) / 1024)

    # Not timed: the same sets as Patron's members?
    members = frame("SELECT segment, profile_id FROM segment_members")
    patron = members.groupby("segment")["profile_id"].agg(set).to_dict()
    differ = {
        name: {"pandas": len(found[name]), "patron": len(patron.get(name, set())),
               "only_pandas": len(found[name] - patron.get(name, set())),
               "only_patron": len(patron.get(name, set()) - found[name])}
        for name in SEGMENTS if found[name] != patron.get(name, set())
    }  # fmt: skip
    return {
        "load_s": load_s,
        "load_parts_s": loads,
        "compute_s": compute_s,
        "compute_parts_s": steps,
        "per_segment_s": per_segment,
        "total_s": round(load_s + compute_s, 2),
        "events_loaded": len(events),
        "events_attributed_used": len(ev),
        "events_with_external_ids": externals,
        "sizes": {n: len(s) for n, s in found.items()},
        "same_members_as_patron": not differ,
        "differences": differ,
        "peak_rss_mib (includes DuckDB's reads)": peak_mib,
        "pandas": pd.__version__,
    }


# -- the run --------------------------------------------------------------------------


def _cpu_busy_share(seconds: float = 1.0) -> float:
    from bench.common import system_cpu_s

    busy0, total0 = system_cpu_s()
    time.sleep(seconds)
    busy1, total1 = system_cpu_s()
    return round((busy1 - busy0) / max(1e-9, total1 - total0), 2)


def run(events: int, profiles: int, added: int = 10_000) -> dict[str, Any]:
    copies = copies_for(events, profiles)
    base, built = built_store(copies)
    if built is None:
        saved = base.with_suffix(".build.json")
        built = json.loads(saved.read_text()) if saved.exists() else None
    customers = _customers_per_copy(_collected()[0])
    work = RESULTS / "segments-work.duckdb"
    work.unlink(missing_ok=True)
    code = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    result: dict[str, Any] = {"machine": machine(), "code": code, "as_of": AS_OF.isoformat(), "copies": copies,
                              "store": base.name, "build_once (not a target)": built}  # fmt: skip
    try:
        _, result["copy_s (not timed for any figure)"] = timed(lambda: shutil.copy(base, work))
        os.sync()  # the copy's gigabytes written out now, not during the measurements
        result["cpu_busy_before"] = _cpu_busy_share()
        with Workspace(Settings(store=work)) as ws:
            store = ws.store
            result["events"] = int(store.execute(store.events().count()))
            result["profiles"] = int(store.execute(store.table("profile_computed").count()))
            result["segments"] = SEGMENTS
            print(f"{result['events']:,} events, {result['profiles']:,} profiles", file=sys.stderr, flush=True)
            result["from_scratch"] = from_scratch(ws)
            print(json.dumps(result["from_scratch"], indent=2), file=sys.stderr, flush=True)
            result["where_time_goes"] = where_time_goes(ws)
            result["patron_peak_rss_mib (so far)"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        result["cpu_busy_before_pandas"] = _cpu_busy_share()
        other: dict[str, float] = {}
        child, _ = metered(lambda: subprocess.run([sys.executable, "-m", "bench.segments_eval", "--pandas", str(work)],
                                                  check=True, capture_output=True, text=True), other, "pandas")  # fmt: skip
        result["pandas"] = json.loads(child.stdout.strip().splitlines()[-1])
        result["pandas"]["other_processes_cpu_share"] = other["pandas"]
        result["cpu_busy_before_incremental"] = _cpu_busy_share()
        with Workspace(Settings(store=work)) as ws:
            result["incremental"] = incremental(ws, copies, customers, added)
        result["patron_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        work.unlink(missing_ok=True)
        work.with_suffix(".duckdb.wal").unlink(missing_ok=True)
    result["summary"] = summary(result)
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    full = result["from_scratch"]["full_refresh_s (median of 3)"]
    inc = result["incremental"]
    pandas = result["pandas"]
    return {
        "full_refresh_20_segments_s (median of 3)": full,
        "full_refresh_runs_s": result["from_scratch"]["full_refresh_runs_s"],
        "full_target_met (< 20 s)": full < 20,
        "full_refresh_cold_index_s": result["from_scratch"]["full_refresh_cold_index_s"],
        "full_cold_index_target_met (< 20 s)": result["from_scratch"]["full_refresh_cold_index_s"] < 20,
        "incremental_build_s": inc["profiles_build_incremental_s"],
        "incremental_refresh_s": inc["segments_refresh_incremental_s"],
        "incremental_total_s": inc["incremental_total_s (build + refresh)"],
        "incremental_refresh_target_met (< 2 s)": inc["segments_refresh_incremental_s"] < 2,
        "incremental_build_and_refresh_target_met (< 2 s)": inc["incremental_total_s (build + refresh)"] < 2,
        "incremental_equals_full": inc["incremental_equals_full"],
        "pandas_total_s": pandas["total_s"],
        "pandas_compute_s": pandas["compute_s"],
        "pandas_total_over_patron_full": round(pandas["total_s"] / full, 2),
        "pandas_compute_over_patron_full": round(pandas["compute_s"] / full, 2),
        "pandas_same_members": pandas["same_members_as_patron"],
        "pandas_total_over_patron_incremental": round(pandas["total_s"] / inc["incremental_total_s (build + refresh)"], 2),
        "segments_differing_after_incremental": sorted(inc["check_differences (segment: entries, exits a full refresh still found)"]),
        "other_processes_cpu_share": {**result["from_scratch"]["other_processes_cpu_share"],
                                      **inc["other_processes_cpu_share"], "pandas": pandas["other_processes_cpu_share"]},
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--pandas":
        print(json.dumps(pandas_child(Path(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000, help="events, about (default 20,000,000)")
    parser.add_argument("--profiles", type=int, default=1_000_000, help="at least this many profiles")
    parser.add_argument("--new-events", type=int, default=10_000, help="the incremental batch (default 10,000)")
    parser.add_argument("--prepare", action="store_true", help="only make (and keep) the built store")
    args = parser.parse_args()
    if args.prepare:
        path, built = built_store(copies_for(args.events, args.profiles))
        print(json.dumps({"store": str(path), "built": built}, indent=2, default=str), flush=True)
        return
    result = run(args.events, args.profiles, args.new_events)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"segments-{datetime.now(UTC).strftime('%Y-%m-%dT%H%M')}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}\n" + json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
