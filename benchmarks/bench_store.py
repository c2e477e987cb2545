"""Benchmark: the raw object store's write path, and what it costs a pull.

Two sections, each child run in a fresh process so that figures do not share a heap:

* store: 64 threads each storing objects of 2-20 KB the way a pull does (``put``, then
  a staging journal line per object, journal fsynced on its cadence, closed at the end),
  as objects/s and CPU milliseconds per object. The baseline is the durable-per-object
  write (tmp file + fsync + rename + directory fsync for every object), measured in the
  same run with this tree's journal.
* pull: ``pull()`` of a generated batch against the emulator at 20 ms of latency with 64
  workers, as jobs/s and CPU milliseconds per job.

``--baseline-tree DIR`` runs both sections a second time with the library of another
checkout (``PYTHONPATH=DIR``) and prints this tree's figures as ratios of that one's.

Usage:
    python benchmarks/bench_store.py                          # store + pull
    python benchmarks/bench_store.py --baseline-tree ../other # vs another checkout
    python benchmarks/bench_store.py --quick                  # a small smoke run
"""

# ruff: noqa: T201  (a command-line script: it reports on stdout)
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, print_table, run_child  # noqa: E402
from benchmarks.bench_pull import bytes_only  # noqa: E402
from playment_datasets.emulator import Emulator  # noqa: E402
from playment_datasets.emulator.generator import generate_batch  # noqa: E402

STORE_CHILD = """
import hashlib, os, random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import playment_datasets as pds
from playment_datasets.registry.store import atomic_write_bytes

root, n, threads, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(7)
datas = [rng.randbytes(rng.randint(2_000, 20_000)) for _ in range(n)]
reg = pds.Registry(root)
objects = Path(root) / "objects"

def durable_put(data):
    sha = hashlib.sha256(data).hexdigest()
    target = objects / sha[:2] / sha[2:]
    if not target.exists():
        atomic_write_bytes(target, data)
    return sha

put = durable_put if mode == "durable" else reg.put_object
with reg.open_staging("proj", "batch") as st:
    def one(i):
        st.record(f"job{i}", {"id": f"job{i}"}, put(datas[i]), etag=None)
    t0, c0 = time.perf_counter(), os.times()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    st._close_journal()  # the last fsync, as a pull's close does
    seconds, c1 = time.perf_counter() - t0, os.times()
cpu = (c1.user - c0.user) + (c1.system - c0.system)
_report(seconds=seconds, cpu=cpu, sys=c1.system - c0.system, library=pds.__file__)
"""

PULL_CHILD = """
import os
import playment_datasets as pds
t0, c0 = time.perf_counter(), os.times()
ds = pds.pull(sys.argv[1], sys.argv[2], api_key=sys.argv[3], base_url=sys.argv[4],
              registry=sys.argv[5], workers=int(sys.argv[6]), progress=False)
seconds, c1 = time.perf_counter() - t0, os.times()
cpu = (c1.user - c0.user) + (c1.system - c0.system)
_report(seconds=seconds, cpu=cpu, sys=c1.system - c0.system, jobs=len(ds.jobs),
        library=pds.__file__)
"""

_KEYS = ("seconds", "cpu", "sys")


def _median(got: list[dict[str, Any]]) -> dict[str, float]:
    return {k: statistics.median(g[k] for g in got) for k in _KEYS}


def _child(code: str, args: list[str], tree: str, cwd: str) -> dict[str, Any]:
    """Run ``code`` with the library of ``tree`` (the cwd must not be a checkout: it would
    come first on sys.path)."""
    got = run_child(code, *args, env={"PYTHONPATH": tree}, cwd=cwd)
    if not Path(got["library"]).is_relative_to(tree):
        raise RuntimeError(f"the child imported {got['library']}, not the library of {tree}")
    return got


def bench_store(n: int, runs: int, trees: dict[str, str]) -> dict[str, dict[str, float]]:
    """Median figures per contender; the runs of the contenders are interleaved."""
    contenders = {"durable": ("durable", trees["this tree"]),
                  **{name: ("store", path) for name, path in trees.items()}}
    got: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for _ in range(runs):
        for name, (mode, path) in contenders.items():
            with tempfile.TemporaryDirectory() as tmp:
                got[name].append(_child(STORE_CHILD, [tmp, str(n), "64", mode], path, tmp))
    return {name: _median(g) for name, g in got.items()}


def bench_pull(n: int, runs: int, trees: dict[str, str]) -> dict[str, dict[str, float]]:
    """pull() in a child per tree against one emulator at 20 ms (bench_pull's batch)."""
    batch = bytes_only(generate_batch(n, seed=1, kinds=["image"], completed_fraction=1.0))
    got: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
    with Emulator(batch, latency_ms=20) as emu:
        for _ in range(runs):
            for name, path in trees.items():
                with tempfile.TemporaryDirectory() as tmp:
                    fig = _child(PULL_CHILD, [emu.project_id, emu.batch_id, emu.api_key,
                                              emu.base_url, tmp, "64"], path, tmp)
                assert fig["jobs"] == n, fig
                got[name].append(fig)
    return {name: _median(g) for name, g in got.items()}


def _rows(label: str, unit: str, n: int, fig: dict[str, float],
          base: dict[str, float] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "contender": label, f"{unit}/s": n / fig["seconds"],
        f"cpu_ms/{unit}": fig["cpu"] / n * 1000, f"sys_ms/{unit}": fig["sys"] / n * 1000,
    }
    row["speed_vs_baseline"] = base["seconds"] / fig["seconds"] if base else None
    row["cpu_vs_baseline"] = fig["cpu"] / base["cpu"] if base else None
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout whose library is the baseline")
    parser.add_argument("--objects", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--only", choices=("store", "pull"), default=None,
                        help="run one section")
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    args = parser.parse_args(argv)
    n_obj = args.objects or (500 if args.quick else 5000)
    n_jobs = args.jobs or (100 if args.quick else 1000)
    runs = args.runs or (1 if args.quick else 3)
    trees = {"this tree": str(ROOT)}
    if args.baseline_tree:
        trees = {f"baseline ({args.baseline_tree.name})": str(args.baseline_tree.resolve()),
                 **trees}
    base_name = next(iter(trees))

    store: list[dict[str, Any]] = []
    pull: list[dict[str, Any]] = []
    if args.only in (None, "store"):
        figs = bench_store(n_obj, runs, trees)
        store = [_rows("durable file per object", "object", n_obj, figs["durable"], None)]
        store += [_rows(f"put_object, {name}", "object", n_obj, figs[name], figs["durable"])
                  for name in trees]
    if args.only in (None, "pull"):
        figs = bench_pull(n_jobs, runs, trees)
        pull = [_rows(f"pull, {name}", "job", n_jobs, figs[name],
                      figs[base_name] if name != base_name else None) for name in trees]

    if args.json:
        print(json.dumps({"store": store, "pull": pull}, indent=2))
        return 0
    if store:
        print_table(f"store: {n_obj} objects of 2-20 KB, 64 threads, put + journal line "
                    f"(median of {runs}); ratios vs the durable file per object", store)
    if pull:
        print_table(f"pull: {n_jobs} image jobs at 20 ms, 64 workers, pull in a child (median "
                    f"of {runs}); ratios vs {base_name}", pull)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
