"""What changed: each cell of a run against the earlier comparable runs (new failure, fixed,
still failing, flaky, passing), and the handshake and cell times per board and mode over the
runs, with regressions flagged against the earlier runs when significant and material (see
`regressions`).

Comparable runs: those with at least one cell (board, mode, case) in common with this run and
of the same kind (physical boards or virtual ones). A cell is flaky when its verdict changed
at least FLAKY_FLIPS times over the comparable runs read (this run's included), e.g.
pass-fail-pass-fail; one failure that a later run fixed is a new failure, then fixed."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Literal

from rig.report.history import Key, Run, number

Status = Literal["new failure", "fixed", "still failing", "flaky", "passing", "skipped"]
STATUSES: tuple[Status, ...] = ("new failure", "fixed", "still failing", "flaky", "passing",
                                "skipped")
Metric = Literal["handshake", "cell", "reconnect", "detect"]
METRICS: dict[Metric, str] = {
    "handshake": "handshake time (ms, median of the cells)",
    "cell": "cell time (ms, connect to published message)",
    "reconnect": "reconnect time (ms, broker back to CONNACK, resilience cells)",
    "detect": "silent-link detection (ms, broker frozen to keep-alive timeout)",
}
PROPERTY: dict[Metric, str] = {"cell": "cell_ms", "reconnect": "reconnect_ms",
                               "detect": "detect_ms"}  # a cell property; handshake: the cell's
MIN_BASELINE = 3  # earlier values needed before a run can be called a regression
FLAKY_FLIPS = 3  # verdict changes in the history window that make a cell flaky
CONTROL = ("host", "broker_preflight")  # board, case: the runner's own handshake, same CPU
ALPHA = 0.01  # the rank test's significance level (one-sided)
MIN_DIFF_MS = 2.0  # handshakes are whole milliseconds: 1 -> 2 ms under load is no regression
NOISE_Z = 3.0  # how many run-to-run deviations (pooled over the metric's series) a rise must pass
# a run whose CPU pressure (rig/report/runner_load.py) exceeds the earlier runs' median by this
# much (or, without earlier figures, BUSY_SHARE) ran on a busy runner: its times are not judged
BUSY_MARGIN = 0.15
BUSY_SHARE = 0.75


def verdict(cell: dict[str, Any] | None) -> str:
    """pass, fail or skip; '' when the run did not have the cell."""
    if cell is None:
        return ""
    v = str(cell.get("verdict", ""))
    return "pass" if v == "pass" else "skip" if v == "skip" else "fail"


def comparable(current: Run, history: list[Run]) -> list[Run]:
    keys = set(current.by_key)
    return [r for r in history if keys & set(r.by_key)
            and (current.hil is None or r.hil is None or r.hil == current.hil)]


def flips(seq: list[str]) -> int:
    """How often the verdict changed from one run to the next."""
    return sum(1 for a, b in itertools.pairwise(seq) if a != b)


def classify(current: Run, history: list[Run]) -> dict[Key, Status]:
    """Each cell of `current` against `history` (comparable runs, oldest first)."""
    out: dict[Key, Status] = {}
    for key, cell in current.by_key.items():
        now = verdict(cell)
        if now == "skip":
            out[key] = "skipped"
            continue
        before = [v for v in (verdict(r.cell(key)) for r in history) if v in ("pass", "fail")]
        if flips([*before, now]) >= FLAKY_FLIPS:
            out[key] = "flaky"
        elif now == "fail":
            out[key] = "still failing" if before and before[-1] == "fail" else "new failure"
        else:
            out[key] = "fixed" if before and before[-1] == "fail" else "passing"
    return out


def changes(statuses: dict[Key, Status]) -> dict[Status, list[Key]]:
    out: dict[Status, list[Key]] = {s: [] for s in STATUSES}
    for key, status in sorted(statuses.items()):
        out[status].append(key)
    return out


def _value(cell: dict[str, Any], metric: Metric) -> float | None:
    """The cell's handshake time, or a time it records as a property (`cell_ms`: from the
    connect to the published message, set-up and resets not counted; `reconnect_ms` and
    `detect_ms`: the resilience cells', rig/cases/test_resilience.py)."""
    if verdict(cell) != "pass":
        return None
    if metric == "handshake":
        return number(cell.get("handshake_ms"))
    return number(cell.get("properties", {}).get(PROPERTY[metric]))


def run_samples(run: Run, metric: Metric) -> dict[tuple[str, str], list[float]]:
    """(board, mode) -> the metric of each of the run's passing board cells."""
    values: dict[tuple[str, str], list[float]] = {}
    for c in run.cells:
        if c["board"] in ("host", "none"):
            continue
        v = _value(c, metric)
        if v is not None:
            values.setdefault((c["board"], c["mode"]), []).append(v)
    return values


def run_medians(run: Run, metric: Metric) -> dict[tuple[str, str], float]:
    """(board, mode) -> the median of the metric over the run's passing board cells."""
    return {k: statistics.median(v) for k, v in run_samples(run, metric).items()}


def control(run: Run) -> dict[str, float]:
    """mode -> the median handshake of the run's passing host broker_preflight cells: the
    runner's own speed, measured on the same CPU in the same minutes as the boards' cells."""
    values: dict[str, list[float]] = {}
    for c in run.cells:
        v = _value(c, "handshake") if (c["board"], c["case"]) == CONTROL else None
        if v is not None and v > 0:
            values.setdefault(c["mode"], []).append(v)
    return {mode: statistics.median(v) for mode, v in values.items()}


def speed_factors(runs: list[Run]) -> list[float]:
    """Per run (`runs` order), how much slower the runner was than in the earlier runs (all but
    the last): the median over modes of its control against the earlier runs' median control;
    1.0 for a run without one. Every run is divided by its own, the earlier ones too, so the
    control's own noise widens the earlier runs' spread that a regression must leave."""
    controls = [control(r) for r in runs]
    reference: dict[str, float] = {}
    for mode in {m for c in controls[:-1] for m in c}:
        reference[mode] = statistics.median(c[mode] for c in controls[:-1] if mode in c)
    out = []
    for c in controls:
        ratios = [v / reference[m] for m, v in c.items() if reference.get(m, 0) > 0]
        factor = statistics.median(ratios) if ratios else 1.0
        out.append(factor if 0.01 <= factor <= 100.0 else 1.0)  # beyond: a broken control
    return out


def rank_test(current: list[float], earlier: list[float]) -> float:
    """One-sided Mann-Whitney U test, normal approximation with tie and continuity correction:
    the p-value of `current` being no larger than `earlier` (1.0 when all values are tied)."""
    n, m = len(current), len(earlier)
    if n == 0 or m == 0:
        return 1.0
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in current for y in earlier)
    total = n + m
    ties = sum(t ** 3 - t for t in Counter([*current, *earlier]).values())
    variance = n * m / 12 * (total + 1 - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0
    z = (u - n * m / 2 - 0.5) / math.sqrt(variance)
    return 1 - statistics.NormalDist().cdf(z)


def rank_test_can_decide(n: int, m: int) -> bool:
    """Whether n current against m earlier samples can reach ALPHA at all (n = 1 never can
    against a window of runs: its exact best p is 1/(m + 1))."""
    return rank_test([float(m + i) for i in range(n)], [float(i) for i in range(m)]) < ALPHA


def upper_fence(values: list[float], noise: float = 0.0) -> float:
    """The top of the earlier runs' spread: Tukey's fence, the third quartile plus 1.5 times
    the interquartile range (one odd earlier run does not raise it much), and at least the
    median times exp(NOISE_Z x `noise`), the run-to-run deviation of the metric (a few
    earlier runs that happen to agree say little about how much a run can move)."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return max(q3 + 1.5 * (q3 - q1), median * math.exp(min(NOISE_Z * noise, 50.0)))


def run_to_run_noise(earlier: list[dict[tuple[str, str], float]]) -> float:
    """How much one run's value moves against the other earlier runs' of the same board and
    mode, pooled over all of them: the standard deviation, estimated from the mean absolute
    deviation, of log(value / median of the other runs' values). 0.0 without two runs."""
    residuals: list[float] = []
    for key in {k for run in earlier for k in run}:
        values = [run[key] for run in earlier if key in run and run[key] > 0]
        for i, value in enumerate(values):
            others = values[:i] + values[i + 1:]
            if others:
                ratio = value / statistics.median(others)
                if ratio > 0 and math.isfinite(ratio):
                    residuals.append(abs(math.log(ratio)))
    return statistics.fmean(residuals) * math.sqrt(math.pi / 2) if residuals else 0.0


@dataclass(frozen=True)
class Regression:
    """A board and mode whose time rose, significantly and materially, against the earlier
    runs; its times divided by each run's runner speed factor."""

    board: str
    mode: str
    metric: Metric
    value: float  # this run's median, divided by its speed factor
    baseline: float  # the rolling median of the earlier runs' (divided by theirs)
    measured: float = 0.0  # this run's median as measured
    measured_baseline: float = 0.0  # the rolling median of the earlier runs' as measured
    factor: float = 1.0  # this run's runner speed factor (host broker_preflight)
    fence: float = 0.0  # the top of the earlier runs' spread (Tukey's upper fence)
    runs: int = 0  # earlier runs compared against
    p: float | None = None  # the rank test's p-value, None when too few samples for it

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    def __str__(self) -> str:
        rank = ("" if self.p is None else ", rank test p < 0.001" if self.p < 0.001
                else f", rank test p = {self.p:.3f}")
        return (f"{self.board} {self.mode}: {self.metric} {self.value:.1f} ms against a "
                f"rolling median of {self.baseline:.1f} ms (+{(self.ratio - 1) * 100:.0f} %, "
                f"+{self.value - self.baseline:.1f} ms); measured {self.measured:.1f} against "
                f"{self.measured_baseline:.1f} ms, runner speed factor {self.factor:.2f}; "
                f"above the spread of {self.runs} "
                f"earlier runs (fence {self.fence:.1f} ms){rank}")


def rule(threshold: float) -> str:
    """How a regression is decided, in one sentence (the page and `hil run` say it)."""
    return (f"A board and mode is a regression when, with each run's times divided by its "
            f"runner speed factor (its host broker_preflight handshakes against the earlier "
            f"runs'), this run's median is above the spread of at least {MIN_BASELINE} "
            f"earlier runs' medians (Tukey's upper fence, and at least {NOISE_Z:g} run-to-run "
            f"deviations of the metric, pooled over all boards and modes), higher by a "
            f"one-sided Mann-Whitney rank test at p < {ALPHA:g} where there are enough "
            f"samples for one, and, divided and as measured, at least {MIN_DIFF_MS:g} ms and "
            f"more than {threshold * 100:.0f} % (hil.toml [report] regression) above their "
            f"rolling median. A run on a busy runner (some task waiting for a CPU during "
            f"{BUSY_MARGIN * 100:.0f} points more of the run than the earlier runs' median, "
            f"Linux /proc/pressure/cpu) is not judged, and is left out of later baselines.")


def series(runs: list[Run], metric: Metric) -> dict[tuple[str, str], list[float | None]]:
    """(board, mode) -> the metric per run (None where the run had no value), `runs` order."""
    medians = [run_medians(r, metric) for r in runs]
    keys = sorted({k for m in medians for k in m})
    return {k: [m.get(k) for m in medians] for k in keys}


def regressions(runs: list[Run], threshold: float) -> list[Regression]:
    """The last run's boards and modes whose time rose against the earlier runs (see `rule`):
    significant (above the earlier runs' spread, and by a rank test where it can decide) and
    material (at least MIN_DIFF_MS and more than `threshold`, 0.4 = 40 %, above their rolling
    median), every run's times divided by its runner speed factor; material as measured too,
    so that a quick control cannot make a regression of an unchanged time."""
    if not runs:
        return []
    factors = speed_factors(runs)
    out: list[Regression] = []
    for metric in METRICS:
        measured = [run_samples(r, metric) for r in runs]
        divided = [{k: [v / f for v in values] for k, values in m.items()}
                   for m, f in zip(measured, factors, strict=True)]
        noise = run_to_run_noise([{k: statistics.median(v) for k, v in d.items()}
                                  for d in divided[:-1]])
        for key, now in sorted(divided[-1].items()):
            found = _judge(key, metric, now, [d[key] for d in divided[:-1] if key in d],
                           threshold, noise)
            value = statistics.median(measured[-1][key])
            before = [statistics.median(m[key]) for m in measured[:-1] if key in m]
            if found is not None and _material(value, statistics.median(before), threshold):
                out.append(replace(found, measured=value, factor=factors[-1],
                                   measured_baseline=statistics.median(before)))
    return out


def _material(value: float, baseline: float, threshold: float) -> bool:
    """At least MIN_DIFF_MS and more than `threshold` above the baseline."""
    return value - baseline >= MIN_DIFF_MS and value > baseline * (1 + threshold)


def _judge(key: tuple[str, str], metric: Metric, now: list[float],
           earlier: list[list[float]], threshold: float, noise: float) -> Regression | None:
    """One board and mode: this run's samples against the earlier runs' (divided by their
    speed factors): material, above the earlier runs' spread (at least the pooled
    run-to-run `noise`), and by the rank test."""
    if len(earlier) < MIN_BASELINE:
        return None
    medians = [statistics.median(e) for e in earlier]
    value, baseline = statistics.median(now), statistics.median(medians)
    fence = upper_fence(medians, noise)
    if baseline <= 0 or value <= fence or not _material(value, baseline, threshold):
        return None
    pooled = [v for e in earlier for v in e]
    p = rank_test(now, pooled) if rank_test_can_decide(len(now), len(pooled)) else None
    if p is not None and p >= ALPHA:
        return None
    return Regression(key[0], key[1], metric, value, baseline, fence=fence,
                      runs=len(earlier), p=p)


def cpu_pressure(run: Run) -> float | None:
    """The share of the run during which some task waited for a CPU (results.json
    `cpu_pressure`), None when the run did not record it."""
    return number(run.data.get("cpu_pressure"))


def busy(run: Run, earlier: list[Run]) -> str:
    """Why `run` ran on a busy runner ('' when it did not, or cannot be told): its CPU
    pressure above the earlier runs' median by more than BUSY_MARGIN, or above BUSY_SHARE
    when no earlier run recorded one. Its times then say more about the runner than about
    the boards, so no regression is read from them."""
    share = cpu_pressure(run)
    if share is None:
        return ""
    before = [p for p in (cpu_pressure(r) for r in earlier) if p is not None]
    usual = statistics.median(before) if before else None
    if usual is not None and share <= usual + BUSY_MARGIN:
        return ""
    if usual is None and share <= BUSY_SHARE:
        return ""
    against = (f"against a median of {usual * 100:.0f} % in {len(before)} earlier run(s)"
               if usual is not None else f"above {BUSY_SHARE * 100:.0f} %")
    return (f"the runner was busy: some task waited for a CPU during {share * 100:.0f} % of "
            f"run {run.id} {against} (Linux /proc/pressure/cpu)")


def judged(runs: list[Run]) -> tuple[list[Run], str]:
    """The runs whose times `regressions` may compare (the earlier ones that did not run on a
    busy runner, then the last), and why the last one's times are not judged ('' when they
    are: then it is last in the list)."""
    if not runs:
        return [], ""
    *earlier, current = runs
    quiet: list[Run] = []  # each earlier run against the quiet ones before it, as the last is
    for run in earlier:
        if not busy(run, quiet):
            quiet.append(run)
    if len(quiet) < MIN_BASELINE:  # too few to judge against anyway: nothing to say
        return [*quiet, current], ""
    why = busy(current, quiet)
    return (quiet, why) if why else ([*quiet, current], "")
