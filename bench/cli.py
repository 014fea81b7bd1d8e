"""`twinbench bench`: check and time the benchmark rows, then report.

    twinbench bench --quick                  # about 4 minutes on 2 CPU cores: conf1 on 6,000 images
    twinbench bench                          # full: 3 rounds, start-up, accuracy over seeds
    twinbench bench --resume                 # measure only the rows not measured yet
    twinbench bench --device cuda --only 'torch-*'
    twinbench bench --compare OLD.json NEW.json
    twinbench bench --batch-sizes 1,8,32,64,256,1024   # the small-model map: where the GPU starts to pay

Results go to ./twinbench-results (quick: ./twinbench-results/quick) unless --out says where.
A full run on a checkout with changes to tracked files refuses to start: its numbers must trace
to a commit (--allow-dirty runs anyway and stores `git diff` beside the results).
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from bench.matrix import Settings

DEFAULT_OUT = Path("twinbench-results")


class UsageError(ValueError):
    """A bad option or a refusal before anything runs: one line, exit status 2."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinbench bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="conf1 rows on the first 6,000 training images, one timed round, no start-up or seeds study")
    p.add_argument("--rounds", type=int, help="timed epochs per row after the first (default: 1 quick, 3 full)")
    p.add_argument("--out", help="results folder (default ./twinbench-results, quick: ./twinbench-results/quick)")
    p.add_argument("--resume", action="store_true", help="keep the rows already measured with the same settings")
    p.add_argument("--overwrite", action="store_true", help="measure again into a folder that holds results")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="rows to run (default all: CUDA rows skip with a reason when no GPU is visible)")
    p.add_argument("--only", metavar="PATTERN", help="row ids: comma-separated globs or substrings")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads of every framework and the JAX peer, the same for all (default 1)")
    p.add_argument("--book-conf1-examples", type=int, default=20_000, metavar="N",
                   help="full run: examples per timed book conf1 epoch, scaled to 60,000 (60000: whole epochs)")
    p.add_argument("--no-startup", action="store_true",
                   help="skip the new-process first-epoch measurements (cold and warm caches)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run a full benchmark on a checkout with changes (the diff is stored beside the results)")
    p.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two latest.json files and exit")
    p.add_argument("--list", action="store_true", help="list the selected rows and exit")
    p.add_argument("--batch-sizes", metavar="SIZES",
                   help="instead of the rows: conf5's network at each batch size (comma-separated), book and fast, "
                        "every framework, on --device (bench/batchmap.py); writes batch_map.json, .md, .png")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    if not 1 <= args.book_conf1_examples <= 60_000:
        raise UsageError("--book-conf1-examples must lie in 1..60000")
    out = Path(args.out) if args.out else DEFAULT_OUT / ("quick" if args.quick else "")
    return Settings(quick=args.quick, rounds=rounds, out=str(out.resolve()), resume=args.resume, device=args.device,
                    only=args.only, book_conf1_examples=args.book_conf1_examples, threads=args.threads,
                    startup=not args.no_startup and not args.quick)


def check_out(args: argparse.Namespace, settings: Settings) -> None:
    """One rule for the results folder: results there are kept (--resume) or replaced (--overwrite),
    never silently."""
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite: choose one (keep the finished rows, or measure them again)")
    out = Path(settings.out)
    held = (out / "latest.json").exists() or any((out / "rows").glob("*.json"))
    if held and not (args.resume or args.overwrite):
        raise UsageError(f"{out} holds results: add --resume to keep its finished rows, or --overwrite to "
                         f"measure them again")


def check_tree(args: argparse.Namespace, settings: Settings) -> list[str]:
    """A full run's numbers must trace to a commit: the tracked files changed outside the results
    folder; UsageError when there are any and --allow-dirty is not given."""
    from common.environment import ROOT, changed_files
    out = Path(settings.out)
    inside = out.is_relative_to(ROOT) and out.relative_to(ROOT).as_posix()
    changed = [f for f in changed_files() if not (inside and (f + "/").startswith(inside.rstrip("/") + "/"))]
    if changed and not settings.quick and not args.allow_dirty:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise UsageError(f"the checkout has changes to tracked files ({shown}): a full run's numbers must "
                         f"trace to a commit; commit them, or add --allow-dirty (the diff is stored with the results)")
    return changed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (or --compare, --list, --batch-sizes): 0 when every row measured (or was
    skipped with its reason), 1 when a row failed a check or crashed, 2 on a usage error, 130 on Ctrl-C."""
    args = parser().parse_args(argv if argv is not None else sys.argv[1:])
    try:
        return _main(args)
    except UsageError as exc:
        print(f"twinbench bench: error: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from bench import report
    if args.compare:
        print(report.compare(*args.compare))
        return 0
    if args.batch_sizes:
        return _batch_map(args)
    settings = settings_from(args)
    rows = settings.rows()
    if args.list or not rows:
        print("\n".join(r.id for r in rows) or f"no rows match --only {args.only!r} --device {args.device}")
        return 0 if rows else 2
    check_out(args, settings)
    changed = check_tree(args, settings)
    from common.environment import git_commit, git_diff
    from common.files import write_text
    git_commit()  # read before the old rows go: removing them makes the work tree differ from the commit
    if changed:
        write_text(Path(settings.out) / "git-diff.patch", git_diff())
    if not settings.resume:  # a fresh run: forget what it is about to measure again
        for row in rows:
            (Path(settings.out) / "rows" / f"{row.id}.json").unlink(missing_ok=True)
        (Path(settings.out) / "accuracy.json").unlink(missing_ok=True) if not settings.quick else None
    from bench import runner
    from bench.threads import policy
    say(f"twinbench bench: {len(rows)} row{'s' * (len(rows) != 1)}, {'quick' if settings.quick else 'full'}, "
        f"{settings.rounds} timed epoch{'s' * (settings.rounds != 1)} each after the first; results in {settings.out}")
    say(f"threads: {policy(settings)}")
    import frameworks
    for line in frameworks.skipped():  # their rows are recorded as skipped, with the reason
        say(f"twinbench bench: {line}")
    start, code = time.perf_counter(), 0
    try:
        code = 1 if runner.run(settings, say) else 0
    except KeyboardInterrupt:
        code = 130
    described = {**settings.__dict__, "seeds": list(settings.seeds), "policy": policy(settings),
                 "changed_files": changed}
    text, written = report.write_report(settings.out, described)
    print(f"\n{text}")
    out = Path(settings.out)
    extra = [out / "git-diff.patch"] + ([] if settings.quick else [out / "accuracy.json"])
    written += [p for p in extra if p.exists()]
    print()
    say(f"{time.perf_counter() - start:.0f} s; written in {out}: rows/, {', '.join(p.name for p in written)}")
    if code == 130:
        print("interrupted: the finished rows are kept; add --resume to the same command to measure the rest",
              file=sys.stderr)
    return code


def say(text: str) -> None:
    """A line of the run's progress, wrapped at 100 columns (a long path stays whole)."""
    print(textwrap.fill(text, 99, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False),
          flush=True)


def _batch_map(args: argparse.Namespace) -> int:
    from bench import batchmap
    try:
        sizes = batchmap.parse_sizes(args.batch_sizes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else DEFAULT_OUT
    batchmap.run(sizes, args.device, out)
    print(f"written: {out}/batch_map.json, batch_map.md, batch_map.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
