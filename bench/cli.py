"""`twinbench bench`: run the benchmark matrix under pytest(-benchmark), then report.

    twinbench bench --quick                 # < 4 minutes on 2 CPU cores
    twinbench bench                          # full: 3 rounds, accuracy over seeds
    twinbench bench --resume                 # measure only rows not yet measured
    twinbench bench --device cuda --only 'torch-*'
    twinbench bench --compare OLD.json NEW.json
    twinbench bench --batch-sizes 1,8,32,64,256,1024   # the small-model map: where the GPU starts to pay
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.matrix import DEFAULT_OUT, SETTINGS_ENV, Settings
from common.environment import git_commit

HERE = Path(__file__).resolve().parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinbench bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="conf1 rows on the first 6,000 training images, one timed round, no seeds study")
    p.add_argument("--rounds", type=int, help="timed epochs per row after the first (default: 1 quick, 3 full)")
    p.add_argument("--resume", action="store_true", help="keep rows already measured with the same settings")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="rows to run (default all: CUDA rows skip with a reason when no GPU is visible)")
    p.add_argument("--only", metavar="PATTERN", help="row ids: comma-separated globs or substrings")
    p.add_argument("--out", help="results directory (default bench/results, quick: bench/results/quick)")
    p.add_argument("--book-conf1-examples", type=int, default=20_000, metavar="N",
                   help="full run: examples per timed book conf1 epoch, scaled to 60,000 (60000: whole epochs)")
    p.add_argument("--threads", type=int, help="set torch/TF threads (default: the frameworks' own)")
    p.add_argument("--no-startup", action="store_true",
                   help="skip the fresh-process start-up measurements (cold and warm caches)")
    p.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two latest.json files and exit")
    p.add_argument("--list", action="store_true", help="list the selected rows and exit")
    p.add_argument("--batch-sizes", metavar="SIZES",
                   help="instead of the rows: conf5's network at each batch size (comma-separated), book and fast, "
                        "every framework, on --device (bench/batchmap.py); writes batch_map.json, .md, .png")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        raise ValueError("--rounds must be at least 1")
    if not 1 <= args.book_conf1_examples <= 60_000:
        raise ValueError("--book-conf1-examples must lie in 1..60000")
    return Settings(quick=args.quick, rounds=rounds, out=str(Path(args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)).resolve()), resume=args.resume,
                    device=args.device, only=args.only, book_conf1_examples=args.book_conf1_examples,
                    threads=args.threads, startup=not args.no_startup and not args.quick)


def run_pytest(settings: Settings, extra: list[str]) -> int:
    """pytest on the floor check and the rows, in this process; its exit code."""
    import pytest
    os.environ[SETTINGS_ENV] = settings.to_env()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    args = [str(HERE / "test_bench.py"), "-p", "no:cacheprovider",
            "-q", "-rfEs", "--benchmark-json", str(out / "benchmark.json"), "--benchmark-sort", "name",
            "--benchmark-columns", "median,min,max,iqr,rounds",
            "-W", "ignore:Benchmark fixture was not used", *extra]
    return int(pytest.main(args))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (or --compare); 0 unless a row failed its gate or crashed."""
    args = parser().parse_args(argv if argv is not None else sys.argv[1:])
    from bench import report
    if args.compare:
        print(report.compare(*args.compare))
        return 0
    if args.batch_sizes:
        from bench import batchmap
        try:
            sizes = batchmap.parse_sizes(args.batch_sizes)
        except ValueError as exc:
            print(f"twinbench bench: error: {exc}", file=sys.stderr)
            return 2
        out = Path(args.out or DEFAULT_OUT)
        batchmap.run(sizes, args.device, out)
        print(f"written: {out}/batch_map.json, batch_map.md, batch_map.png")
        return 0
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"twinbench bench: error: {exc}", file=sys.stderr)
        return 2
    rows = settings.rows()
    if args.list or not rows:
        print("\n".join(r.id for r in rows) or f"no rows match --only {args.only!r} --device {args.device}")
        return 0 if rows else 2
    git_commit()  # read before the old rows go: removing them makes the work tree differ from the commit
    if not settings.resume:  # a fresh run: forget what it is about to measure again
        for row in rows:
            (Path(settings.out) / "rows" / f"{row.id}.json").unlink(missing_ok=True)
        if not settings.quick:
            (Path(settings.out) / "accuracy.json").unlink(missing_ok=True)
    print(f"twinbench bench: {len(rows)} rows, {'quick' if settings.quick else 'full'}, "
          f"{settings.rounds} timed round(s) each, results in {settings.out}", flush=True)
    import frameworks
    for line in frameworks.skipped():  # their rows are recorded as skipped, with the reason
        print(f"twinbench bench: {line}", flush=True)
    start = time.perf_counter()
    try:
        code = run_pytest(settings, args.pytest_args)
    except KeyboardInterrupt:
        code = 2
    print(f"\n{report.write_report(settings.out, {**settings.__dict__, 'seeds': list(settings.seeds)})}")
    print(f"\n{time.perf_counter() - start:.0f} s; written: {settings.out}/latest.json, latest.md, "
          f"epoch_times.png, learning_curves.png, rows/*.json", flush=True)
    if code == 2:
        print("interrupted: finished rows are kept; `twinbench bench --resume` measures the rest", file=sys.stderr)
        return 130
    return 0 if code in (0, 5) else 1


if __name__ == "__main__":
    sys.exit(main())
