"""Patient request records → patient impact and the charts' time series, in one streaming pass.

A run can leave a million records, so they are read once, in any order, and nothing per record is
kept beyond counters, sets of patient ids and per-bucket latency histograms. Patient measures
(shares, error rates, latencies) are real and do not depend on the time scale; times in the result
are drill seconds.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from .card import (JourneyImpact, LongestOutage, LongestWait, PatientImpact, PhaseCounts, Series,
                   SeriesPoint)
from .values import text

# time series: ~TARGET_POINTS buckets of a round number of drill seconds; latency histograms
TARGET_POINTS = 100
MAX_POINTS = 400
NICE_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400,
                21600, 43200, 86400)
HIST_RATIO = 1.1  # latency bins grow by 10 %: p50/p95 read from them are within ±5 %
HIST_BINS = 160
_HIST_K = 1.0 / math.log(HIST_RATIO)


def bucket_for(span_drill: float | None) -> float:
    """A round bucket width in drill seconds giving about TARGET_POINTS buckets over the span."""
    if not span_drill or span_drill <= 0:
        return float(NICE_BUCKETS[0])
    want = span_drill / TARGET_POINTS
    return float(next((b for b in NICE_BUCKETS if b >= want), NICE_BUCKETS[-1]))


def tally(records: Iterable[dict], t_fault: float | None, t_recovered: float | None, scale: float,
          *, origin: float | None = None, span: float | None = None) -> tuple[PatientImpact, Series]:
    """One streaming pass over request records (dicts as in docs/internals.md) → patient impact and
    the time series of the charts.

    Phases by request start `t`: before t_fault; during = [t_fault, recovery] (open-ended when there
    was no recovery, i.e. to the end of the records); after recovery.
    Series: buckets of a round number of drill seconds from `origin` (T+0; the first record's time
    when None), sized for about TARGET_POINTS over `span` real seconds (when known), merged after the
    pass when the records reach much further. Latencies go into log-spaced histograms per bucket,
    so p50/p95 are exact to the bin (±5 %) and buckets can be merged.
    Records need not be in time order."""
    scale = float(scale)
    width_drill = bucket_for(span * scale if span else None) if span else 1.0 * scale
    p = _Pass(t_fault, t_recovered, origin, width_drill / scale)  # bucket width in real seconds
    p.feed(records)
    return p.impact(t_fault, t_recovered, scale), _series(p.buckets, p.origin, p.width, scale)


def tally_records(records: Iterable[dict], t_fault: float | None, t_recovered: float | None,
                  scale: float) -> PatientImpact:
    """Patient impact alone (see `tally`)."""
    return tally(records, t_fault, t_recovered, scale)[0]


class _Pass:
    """What one pass over the records has counted so far."""

    def __init__(self, t_fault: float | None, t_recovered: float | None, origin: float | None,
                 width: float):
        self.tf = math.inf if t_fault is None else t_fault
        self.tr = math.inf if t_recovered is None else t_recovered
        self.origin, self.width = origin, width
        self.counts = [[0, 0], [0, 0], [0, 0]]  # before / during / after: [requests, failed]
        self.patients: set = set()
        self.active: set = set()
        self.affected: set = set()
        # journey → [requests, failed, first_fail, last_fail, patients, affected] during the incident
        self.journeys: dict[str, list] = {}
        self.buckets: dict[int, list] = {}  # index → [requests, failed, acked writes, latency histogram]
        self.fail_since: dict[str, tuple] = {}  # patient → (first failure of the current streak, journey)
        self.best_out: tuple | None = None  # (seconds, patient, journey, since, ongoing)
        self.longest: dict | None = None
        self.longest_ms = -1.0
        self.first, self.last = math.inf, -math.inf
        self.malformed = 0

    def feed(self, records: Iterable[dict]) -> None:
        # the hot loop: locals and class checks instead of attributes and isinstance
        buckets, fail_since, patients, counts = self.buckets, self.fail_since, self.patients, self.counts
        origin, width, tf, tr = self.origin, self.width, self.tf, self.tr
        first, last, longest_ms = self.first, self.last, self.longest_ms
        log, K, top, nbins = math.log, _HIST_K, HIST_BINS - 1, HIST_BINS
        for rec in records:
            if rec.get("persona") == "attacker" or rec.get("journey") == "offline":
                continue  # bots are not patients; offline reception is not the hospital serving
            t = rec.get("t")
            tc = t.__class__
            if tc is not float and tc is not int:
                self.malformed += 1
                continue
            if origin is None:
                origin = t
            ok = rec.get("ok") is True
            patient = rec.get("patient")
            if patient.__class__ is not str:  # a corrupt line must not crash the sets below
                patient = None
            if t < first:
                first = t
            if t > last:
                last = t
            patients.add(patient)
            i = int((t - origin) // width)
            b = buckets.get(i)
            if b is None:
                b = buckets[i] = [0, 0, 0, [0] * nbins]
            b[0] += 1
            ms = rec.get("ms")
            mc = ms.__class__
            if mc is float or mc is int:
                if ms > longest_ms:
                    longest_ms, self.longest = ms, rec
                b[3][0 if ms < 1 else min(top, int(log(ms) * K) + 1)] += 1
            if ok:
                if rec.get("write_id"):
                    b[2] += 1
                if patient in fail_since:
                    self._served(patient, t)
            else:
                b[1] += 1
                if patient is not None and patient not in fail_since:
                    fail_since[patient] = (t, rec.get("journey"))
            phase = 0 if t < tf else (1 if t <= tr else 2)
            c = counts[phase]
            c[0] += 1
            if not ok:
                c[1] += 1
            if phase == 1:
                self._during(rec, t, ok, patient)
        self.origin, self.first, self.last, self.longest_ms = origin, first, last, longest_ms

    def _served(self, patient: str, t: float) -> None:
        """A patient's failing streak ended at t: the longest outage so far?"""
        since, journey = self.fail_since.pop(patient)
        if t > since and (self.best_out is None or t - since > self.best_out[0]):
            self.best_out = (t - since, patient, journey, since, False)

    def _during(self, rec: dict, t: float, ok: bool, patient: str | None) -> None:
        """A request during the incident: its journey's counts and the active / affected sets."""
        name = rec.get("journey") or rec.get("persona") or "unknown"
        j = self.journeys.get(name)
        if j is None:
            j = self.journeys[name] = [0, 0, None, None, set(), set()]
        j[0] += 1
        j[4].add(patient)
        self.active.add(patient)
        if not ok:
            j[1] += 1
            j[2] = t if j[2] is None or t < j[2] else j[2]
            j[3] = t if j[3] is None or t > j[3] else j[3]
            j[5].add(patient)
            self.affected.add(patient)

    def _longest_outage(self) -> tuple | None:
        """The longest streak, counting those still failing when the records end."""
        best = self.best_out
        for patient, (since, journey) in self.fail_since.items():
            if self.last > since and (best is None or self.last - since > best[0]):
                best = (self.last - since, patient, journey, since, True)
        return best

    def impact(self, t_fault: float | None, t_recovered: float | None, scale: float) -> PatientImpact:
        for s in (self.patients, self.active, self.affected):
            s.discard(None)
        best_out = self._longest_outage()
        first, last = (None, None) if self.first == math.inf else (self.first, self.last)

        def rel(w: float | None) -> float | None:
            return None if w is None or t_fault is None else round((w - t_fault) * scale, 3)

        before, during, after = (PhaseCounts(requests=n, failed=f) for n, f in self.counts)
        longest = self.longest
        return PatientImpact(
            patients=len(self.patients), active=len(self.active), affected=len(self.affected),
            affected_share=len(self.affected) / len(self.active) if self.active else None,
            before=before, during=during, after=after, journeys=self._journey_rows(rel, scale),
            recovered=t_recovered is not None,
            downtime=rel(t_recovered),
            longest_wait=None if longest is None else LongestWait(
                ms=self.longest_ms, patient=text(longest.get("patient")),
                journey=text(longest.get("journey")), name=text(longest.get("name")),
                at=rel(longest.get("t"))),
            longest_outage=None if best_out is None else LongestOutage(
                seconds=round(best_out[0] * scale, 3), real_seconds=round(best_out[0], 3),
                patient=best_out[1], journey=text(best_out[2]), since=rel(best_out[3]),
                ongoing=best_out[4]),
            error_rate_steady=before.error_rate, error_rate_after=after.error_rate,
            first_wall=first, last_wall=last, malformed=self.malformed)

    def _journey_rows(self, rel, scale: float) -> list[JourneyImpact]:
        rows = []
        for name, (n, f, a, z, ps, af) in sorted(self.journeys.items(), key=lambda kv: str(kv[0])):
            ps.discard(None)
            af.discard(None)
            rows.append(JourneyImpact(journey=str(name), requests=n, failed=f, patients=len(ps),
                                      affected=len(af), first_failure=rel(a), last_failure=rel(z),
                                      downtime=None if a is None else round((z - a) * scale, 3)))
        return rows


def _percentile(hist: list[int], n: int, q: float) -> float | None:
    if n <= 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(hist):
        seen += c
        if c and seen >= rank:
            return 0.5 if i == 0 else round(HIST_RATIO ** (i - 0.5), 1)
    return None


def _merged(buckets: dict[int, list], factor: int) -> dict[int, list]:
    """Neighbouring buckets `factor` at a time (their histograms add up)."""
    out: dict[int, list] = {}
    for i, (n, f, a, h) in buckets.items():
        m = out.get(i // factor)
        if m is None:
            out[i // factor] = [n, f, a, list(h)]
        else:
            m[0] += n
            m[1] += f
            m[2] += a
            m[3] = [x + y for x, y in zip(m[3], h)]
    return out


def _series(buckets: dict[int, list], origin: float | None, width: float, scale: float) -> Series:
    if not buckets or origin is None:
        return Series(origin_wall=origin, bucket=round(width * scale, 6), bucket_real=round(width, 6))
    lo, hi = min(buckets), max(buckets)
    factor = max(1, math.ceil((hi - lo + 1) / MAX_POINTS))
    if factor > 1:  # records far beyond the journal's span: merge neighbours
        buckets, width = _merged(buckets, factor), width * factor
        lo, hi = min(buckets), max(buckets)
    points = []
    for i in range(lo, hi + 1):
        n, f, a, h = buckets.get(i) or (0, 0, 0, None)
        timed = sum(h) if h else 0
        points.append(SeriesPoint(
            t=round(i * width * scale, 3), requests=n, failed=f,
            success_rate=round((n - f) / n, 4) if n else None, rps=round(n / width, 3),
            p50_ms=_percentile(h, timed, 0.5) if h else None,
            p95_ms=_percentile(h, timed, 0.95) if h else None, acked_writes=a))
    return Series(origin_wall=origin, bucket=round(width * scale, 6), bucket_real=round(width, 6),
                  points=points)
