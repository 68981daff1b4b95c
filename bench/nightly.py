"""The nightly twice, first day and next day, end to end through Prefect, against the goals.

    .venv/bin/python bench/nightly.py [--new-bars 5] [--seeds 3] [--keep] [--no-quality]
    .venv/bin/python bench/nightly.py --quality-of KEPT_HOME [--seeds 3]

In a temporary home (warehouse, checkpoints, figures, Prefect's own files):

1. Day 1, ``attnviz run --as-of 2026-11-24`` on the sample bars less each series' last
   ``--new-bars`` bars: the first run, on an empty warehouse. Goal: <= 240 s wall.
2. Day 2, ``attnviz run --as-of 2026-11-25`` on the whole sample: each series has
   ``--new-bars`` new bars, the everyday nightly. Goal: <= 120 s wall.

Each run is the console script in a child process, which starts its own Prefect server.
Per day the script prints the wall time; the peak RSS of the pipeline process (its
``ru_maxrss`` from ``wait4``: the larger of its own high-water mark and that of any one
process it reaped) and of the whole process tree, Prefect server included (VmRSS of the
child and its descendants summed, polled every 0.1 s, which costs the machine about 3 ms
of CPU per poll); then, from the warehouse, the run's phases (``run_phases``: summed task
seconds, tasks, peak RSS when the phase ended) and how each model was trained
(``models.training``: full or warm). Goal: peak pipeline RSS <= 1.5 GB (1536 MiB) on
both days.

The phases' seconds are summed task seconds: trainings run concurrently, so the
train phase's can exceed the run's wall time.

Then, unless ``--no-quality``, the models the nightly serves after day 2 (the active
versions: warm-started, or the version before when promotion rejected the warm one)
against today's recipe: every model of the catalogue is trained from scratch on the
same bars with ``--seeds`` seeds (``attnviz.train.fit_series``, in this process, as
the nightly trains: concurrently, one torch thread each), and all are scored on the
same test windows with the pipeline's own metrics: direction accuracy, AUC, return MSE.

Two full retrains that differ only in their seed differ in these metrics too, so the
nightly is compared with the mean of the seeds, and the interval of each difference
(nightly minus that mean) is a 95% percentile interval of a bootstrap that resamples
both: the test windows, with a paired stationary block bootstrap (``arch``; consecutive
windows share up to ``seq_len - 1`` bars, so their errors are correlated and resampling
single windows would make the interval too narrow; blocks of mean length ``seq_len``
keep that correlation), and the seeds, with replacement. A metric is "within noise"
when its interval holds 0. With 15 such comparisons, about one in twenty would read
"better" or "worse" by chance alone, so the verdicts that count are corrected for
their number: Holm's step-down on the bootstrap p-values (twice the share of
resampled differences on the far side of 0) keeps the chance of any false verdict at
5%. Goal: none "worse" after the correction.

The temporary folders are removed at the end, unless ``--keep``. ``--quality-of`` runs
the comparison alone on a home that ``--keep`` kept.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from arch.bootstrap import StationaryBootstrap

from attnviz import config
from attnviz.catalogue import ModelSpec, load_catalogue
from attnviz.checkpoint import TrainedModel
from attnviz.features import Windows
from attnviz.metrics import metrics
from attnviz.objective import Forecast
from attnviz.train import FitResult, fit_series
from flows.nightly import torch_threads
from warehouse.bars import read_bars
from warehouse.db import connect, query, query_row

GOAL_RSS_MB = 1.5 * 1024
POLL_SECONDS = 0.1
# Metric -> +1 where higher is better, -1 where lower is.
QUALITY = {"direction_accuracy": 1, "direction_auc": 1, "return_mse": -1}
DRAWS, LEVEL = 1000, 0.95


@dataclass(frozen=True)
class Day:
    """One nightly run of the bench: what it is called, when it stands, its wall-time goal."""

    name: str
    as_of: datetime
    goal_seconds: float


DAYS = (
    Day("day 1 (first run)", datetime(2026, 11, 24, tzinfo=UTC), 240.0),
    Day("day 2 (next day)", datetime(2026, 11, 25, tzinfo=UTC), 120.0),
)


@dataclass(frozen=True)
class Measured:
    """One run as seen from outside: wall seconds and peak RSS in MiB."""

    day: Day
    seconds: float
    pipeline_mb: float
    tree_mb: float


def truncated_sample(source: Path, target: Path, new_bars: int) -> None:
    """The sample files of ``source`` in ``target``, less each series' newest ``new_bars`` bars."""
    for file in sorted(source.glob("*.parquet")):
        newest_first = pl.col("ts").rank("ordinal", descending=True).over("symbol", "interval")
        pl.read_parquet(file).filter(newest_first > new_bars).write_parquet(target / file.name)


def process_tree(root: int) -> set[int]:
    """``root`` and all its descendants, from the parent ids in /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) is in parentheses and may hold spaces.
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:  # the process ended while the list was read
            continue
    tree = {root}
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def rss_mb(pid: int) -> float:
    """``VmRSS`` of a process in MiB; 0 once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return (
        sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
    )


def run_day(day: Day, sample: Path, log: Path) -> Measured:
    """``attnviz run`` as of ``day`` on the bars in ``sample``, its output in ``log``.

    Raises
    ------
    SystemExit
        If the run exits non-zero, with the end of its output.
    """
    attnviz = Path(sys.executable).parent / "attnviz"  # the console script of this venv
    command = [str(attnviz), "run", "--as-of", f"{day.as_of:%Y-%m-%d}"]
    environment = {**os.environ, "ATTNVIZ_SAMPLE_DIR": str(sample)}
    tree_peak, started = 0.0, time.perf_counter()
    with log.open("w") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
        while True:
            # wait4 rather than Popen.wait: it also returns the child's resource usage.
            ended, status, usage = os.wait4(child.pid, os.WNOHANG)
            if ended:
                break
            tree_peak = max(tree_peak, sum(map(rss_mb, process_tree(child.pid))))
            time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise SystemExit(f"{' '.join(command)} exited with {child.returncode}:\n{tail}")
    return Measured(day, seconds, usage.ru_maxrss / 1024, tree_peak)


def report_day(measured: Measured) -> None:
    """Print a day's run from outside and from the warehouse."""
    with closing(connect(read_only=True)) as con:
        run = query_row(
            con,
            """
            SELECT run_id, attempts, status, epoch(ended_at - started_at) AS seconds, peak_rss_mb
            FROM runs ORDER BY started_at DESC LIMIT 1
            """,
        )
        if run is None:
            raise SystemExit("the run left no row in runs")
        phases = query(
            con,
            """
            SELECT phase, seconds, tasks, peak_rss_mb FROM run_phases
            WHERE run_id = ? AND attempt = ? ORDER BY seconds DESC
            """,
            [run["run_id"], run["attempts"]],
        )
        models = query(
            con,
            """
            SELECT name, version, status, training, warm_from, training_reason FROM models
            WHERE run_id = ? ORDER BY name
            """,
            [run["run_id"]],
        )
    day = measured.day
    print(f"\n{day.name}, as of {day.as_of:%Y-%m-%d}: {measured.seconds:.1f} s wall")
    print(f"  flow run {run['seconds']:.1f} s ({run['status']}); the rest is start-up and exit")
    print(
        f"  peak RSS: pipeline process {measured.pipeline_mb:.0f} MiB "
        f"(recorded by the run: {run['peak_rss_mb']:.0f}), "
        f"process tree with the Prefect server {measured.tree_mb:.0f} MiB"
    )
    print("  phases (summed task seconds; trainings overlap)")
    print(f"  {'phase':<10} {'seconds':>8} {'share':>6} {'tasks':>6} {'peak RSS MiB':>13}")
    summed = float(phases["seconds"].sum())
    for phase, seconds, tasks, peak in phases.iter_rows():
        share = seconds / summed
        print(f"  {phase:<10} {seconds:8.1f} {share:6.0%} {tasks:6d} {peak:13.0f}")
    print(f"  {'model':<18} {'version':>7}  {'status':<9} {'training':<8} {'from':<5} why")
    for name, version, status, training, warm_from, reason in models.iter_rows():
        after = "-" if warm_from is None else f"v{warm_from}"
        print(f"  {name:<18} {version:>7}  {status:<9} {training:<8} {after:<5} {reason}")


def print_goals(runs: list[Measured]) -> None:
    """Each goal as measured / goal, and whether it is met."""
    ratios = {
        f"{m.day.name} wall / {m.day.goal_seconds:.0f} s": m.seconds / m.day.goal_seconds
        for m in runs
    }
    ratios |= {
        f"{m.day.name} peak pipeline RSS / 1.5 GB": m.pipeline_mb / GOAL_RSS_MB for m in runs
    }
    print("\ngoals")
    for goal, ratio in ratios.items():
        print(f"  {goal:<46} {ratio:5.2f}  {'met' if ratio <= 1 else 'NOT met'}")


def scores(forecast: Forecast, windows: Windows, index: np.ndarray) -> np.ndarray:
    """The quality metrics of the forecasts at ``index``, in the order of ``QUALITY``."""
    picked = Forecast(forecast.ret[index], forecast.prob[index], forecast.vol[index])
    scored = metrics(picked, windows.take(index))
    return np.array([scored[name] for name in QUALITY])


def resamples(n: int, block: int, seed: int = 0) -> list[np.ndarray]:
    """DRAWS stationary-bootstrap resamples of positions 0..n-1, in blocks of mean length block."""
    resampler = StationaryBootstrap(block, np.arange(n), seed=np.random.default_rng(seed))
    return [np.asarray(positional[0]) for positional, _ in resampler.bootstrap(DRAWS)]


@dataclass(frozen=True)
class Verdict:
    """One metric of one model: the 95% verdict, and the difference's bootstrap p-value."""

    model: str
    metric: str
    verdict: str
    p: float


def p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference of 0, from its resampled differences."""
    far_side = int(min((differences <= 0).sum(), (differences >= 0).sum()))
    return min(1.0, 2 * (far_side + 1) / (len(differences) + 1))


def holm(verdicts: list[Verdict], level: float) -> list[Verdict]:
    """The verdicts that stay "better" or "worse" after Holm's step-down at ``1 - level``."""
    kept = []
    for rank, one in enumerate(sorted(verdicts, key=lambda v: v.p)):
        if one.p > (1 - level) / (len(verdicts) - rank):
            break
        if one.verdict != "within noise":
            kept.append(one)
    return kept


def verdict(low: float, high: float, sign: int) -> str:
    """The nightly against a full retrain on one metric, from its difference's interval."""
    if low <= 0 <= high:
        return "within noise"
    return "better" if low * sign > 0 else "worse"


def compare_model(
    name: str, spec: ModelSpec, retrains: list[FitResult], registered: dict[str, Any]
) -> list[Verdict]:
    """Print a day-2 version's test scores beside full retrains' (one per seed); its verdicts.

    ``registered`` is the version's row in ``models`` (version, status, training, checkpoint).
    """
    test = retrains[0].test  # split_series's test part of these bars: the windows all are scored on
    nightly = TrainedModel.load(registered["checkpoint"]).predict(test)
    retrained = [fit.trained.predict(test) for fit in retrains]
    block = spec.group.features.seq_len
    seeds = np.random.default_rng(1)
    differences = []
    for index in resamples(len(test), block):
        chosen = seeds.integers(len(retrained), size=len(retrained))
        reference = np.mean([scores(retrained[s], test, index) for s in chosen], axis=0)
        differences.append(scores(nightly, test, index) - reference)
    tail = 50 * (1 - LEVEL)
    resampled = np.array(differences)
    lows, highs = np.percentile(resampled, [tail, 100 - tail], axis=0)
    whole = np.arange(len(test))
    ours = scores(nightly, test, whole)
    each_seed = np.array([scores(forecast, test, whole) for forecast in retrained])
    theirs = each_seed.mean(axis=0)
    version = f"v{registered['version']} ({registered['training']}, {registered['status']})"
    print(f"  {name} {version}: {len(test)} test windows, blocks of mean length {block}")
    print(
        f"    {'metric':<19}{'nightly':>10}{'full retrain':>13}{'seeds from':>12}{'to':>10}"
        f"{'difference':>12}  interval"
    )
    verdicts = []
    for i, (metric, sign) in enumerate(QUALITY.items()):
        said = verdict(lows[i], highs[i], sign)
        verdicts.append(Verdict(name, metric, said, p_value(resampled[:, i])))
        spread = f"{each_seed[:, i].min():12.4g}{each_seed[:, i].max():10.4g}"
        numbers = f"{ours[i]:10.4g}{theirs[i]:13.4g}{spread}{ours[i] - theirs[i]:12.3g}"
        interval = f"[{lows[i]:.3g}, {highs[i]:.3g}]"
        print(f"    {metric:<19}{numbers}  {interval}  p {verdicts[-1].p:.3f}  {said}")
    return verdicts


def compare_quality(as_of: datetime, seeds: int) -> None:
    """Print, per model, the served model's test scores against full retrains', with intervals.

    The served model is the version active after day 2: the warm-started one, or the
    version before it when promotion rejected the warm one.
    """
    specs = load_catalogue(config.catalogue_path()).models()
    with closing(connect(read_only=True)) as con:
        registered = query(
            con,
            "SELECT name, version, status, training, checkpoint FROM models "
            "WHERE status = 'active'",
        )
        bars = {
            name: [read_bars(con, *series.key, closed_by=as_of) for series in spec.series]
            for name, spec in specs.items()
        }
    versions = {row["name"]: row for row in registered.iter_rows(named=True)}

    def full_retrain(job: tuple[str, int]) -> FitResult:
        name, seed = job
        group = specs[name].group
        training = replace(group.training, seed=seed)
        return fit_series(
            bars[name], group.features, group.model, training, log=lambda _: None, name=name
        )

    jobs = [(name, seed) for name in specs for seed in range(seeds)]
    with torch_threads(1), ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        fits = dict(zip(jobs, pool.map(full_retrain, jobs), strict=True))
    print(
        f"\nmodel quality, day 2 against full retrains with {seeds} seeds; "
        f"{LEVEL:.0%} bootstrap of test windows (paired, in blocks) and seeds"
    )
    verdicts = []
    for name, spec in specs.items():
        retrains = [fits[name, seed] for seed in range(seeds)]
        verdicts += compare_model(name, spec, retrains, versions[name])
    worse = sum(one.verdict == "worse" for one in verdicts)
    print(f"  worse than a full retrain at {LEVEL:.0%} each: {worse} of {len(verdicts)}")
    standing = holm(verdicts, LEVEL)
    print(f"  after Holm's correction for {len(verdicts)} comparisons (5% family-wise):")
    for one in standing:
        print(f"    {one.model} {one.metric}: {one.verdict} (p {one.p:.4f})")
    worse = sum(one.verdict == "worse" for one in standing)
    print(f"  worse than a full retrain: {worse} of {len(verdicts)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--new-bars", type=int, default=5, help="new bars per series on day 2")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--no-quality", action="store_true", help="skip the model comparison")
    parser.add_argument("--seeds", type=int, default=3, help="full retrains per model")
    parser.add_argument("--quality-of", type=Path, help="only compare, on a kept home")
    args = parser.parse_args()
    if args.quality_of:
        os.environ["ATTNVIZ_HOME"] = str(args.quality_of)
        compare_quality(DAYS[-1].as_of, args.seeds)
        return

    whole_sample = config.sample_dir()
    home = Path(tempfile.mkdtemp(prefix="attnviz-nightly-"))
    first_sample = home / "sample-day-1"
    first_sample.mkdir()
    truncated_sample(whole_sample, first_sample, args.new_bars)
    (home / "prefect").mkdir()  # Prefect fails on a PREFECT_HOME that does not exist
    # A warehouse or a Prefect server named in the environment would be the user's own.
    for name in ("ATTNVIZ_DB", "PREFECT_API_URL"):
        os.environ.pop(name, None)
    os.environ |= {
        "ATTNVIZ_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    print(f"{len(os.sched_getaffinity(0))} cores; {args.new_bars} new bars per series on day 2")
    try:
        runs: list[Measured] = []
        for day, sample in zip(DAYS, (first_sample, whole_sample), strict=True):
            runs.append(run_day(day, sample, home / f"{day.as_of:%Y-%m-%d}.log"))
            report_day(runs[-1])
        print_goals(runs)
        if not args.no_quality:
            compare_quality(DAYS[-1].as_of, args.seeds)
    finally:
        if args.keep:
            print(f"\nkept {home} (warehouse, figures, logs, the day-1 sample)")
        else:
            shutil.rmtree(home)


if __name__ == "__main__":
    main()
