"""`twinbench experiment`: the chapter's experiment in both frameworks, over seeds, on Dask.

    plan     arms x specs x frameworks x seeds (x folds) as tasks
    worker   one run inside a Dask worker (models and compiled loops reused across seeds)
    execute  the Dask client (LocalCluster or --scheduler ADDRESS), records, resume, failures
    summary  mean ± std, paired differences, TOST, the chapter's printout; the table
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import frameworks
from common.config import SpecError
from common.files import write_json, write_text
from common.text import plural
from twinbench.run import warn_if_busy


def main(args) -> int | None:
    from plots import plot_experiment
    from twinbench.experiment import execute, plan, summary
    fws = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()] + (["kfold"] if args.k_folds else [])
    plan.check_arguments(args.seeds, fws, arms, args.k_folds or 0, args.epochs, args.train_examples)
    for line in frameworks.skipped(tuple(fws)):  # a machine with one framework runs that one's part
        print(f"twinbench experiment: {line}", file=sys.stderr, flush=True)
    fws = [fw for fw in fws if fw in frameworks.available(tuple(fws))]
    if not fws:
        raise SpecError("--frameworks: none of them is installed here")
    specs = plan.load_specs(args.specs or list(plan.DEFAULT_SPECS))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    tasks = plan.plan(specs, fws, seeds, arms, args.variant, args.epochs, args.k_folds or 0, args.train_examples)
    out = Path(args.out)
    if args.resume and args.overwrite:
        raise SpecError("--resume and --overwrite: choose one (keep the finished runs, or make them again)")
    done = [t for t in tasks if execute.outcome(out, t)]
    if done and not (args.resume or args.overwrite):
        raise SpecError(f"--out {out} holds {plural(len(done), 'finished run')} of this experiment: add --resume to "
                        "keep them and make the rest, or --overwrite to make them all again")
    print(f"twinbench experiment: {plural(len(tasks), 'run')} ({', '.join(specs)} x {', '.join(fws)} x "
          f"{plural(len(seeds), 'seed')}; arms {', '.join(arms)}; {args.variant} variant) -> {out}",
          file=sys.stderr, flush=True)
    warn_if_busy("--workers 1 runs one training at a time, which a shared machine slows less")
    began = time.perf_counter()
    if args.resume and all(execute.finished(out, t) for t in tasks):
        print(f"twinbench experiment: {'the run is' if len(tasks) == 1 else f'all {len(tasks)} runs are'} done "
              "already (--resume): nothing to run, no cluster started", file=sys.stderr, flush=True)
        counts = {"planned": len(tasks), "skipped": len(tasks), "ran": 0, "failed": 0}
    else:
        with execute.client_for(args.scheduler, args.workers) as client:
            where = args.scheduler or f"a LocalCluster of {plural(len(client.scheduler_info()['workers']), 'worker')}"
            print(f"running on {where}", file=sys.stderr, flush=True)
            counts = execute.execute(tasks, client, out, args.resume, execute.progress(len(tasks)))
    wall = time.perf_counter() - began
    result = summary.summarize(summary.load_records(out), list(specs))
    result.update(runs=counts, wall_seconds=wall, command=" ".join(sys.argv), environment=frameworks.describe(),
                  settings={"specs": list(specs), "frameworks": fws, "seeds": seeds, "arms": arms,
                            "variant": args.variant, "epochs": args.epochs, "train_examples": args.train_examples,
                            "scheduler": args.scheduler or "LocalCluster"})
    write_json(out / "summary.json", result)
    from plots.experiment import size_note
    text = summary.table(result)
    small = size_note(result)
    write_text(out / "summary.md", f"# twinbench experiment\n\n{small + chr(10) + chr(10) if small else ''}{text}\n")
    held = all(r.get("evaluation") == "validation_split" for r in result["specs"])
    plot_experiment(result, out / "curves.png",
                    title=f"{'validation' if held else 'test'} accuracy over seeds ({args.variant} variants)")
    print(text)
    print(f"\n{plural(counts['ran'], 'run')} made, {counts['skipped']} already done, {counts['failed']} failed; "
          f"{wall:.0f} s; written: {out}/summary.md, summary.json, curves.png, runs/*.json")
    if counts.get("interrupted"):
        print("twinbench: interrupted: every finished run is kept; `--resume` makes the rest", file=sys.stderr)
        return 130
    return 1 if counts["failed"] else None


def add_parser(sub) -> None:
    import argparse
    import textwrap

    from twinbench.options import add_variant
    about = ("Train each spec in both frameworks from seeds (the canonical initial weights and shuffle order of "
             "each seed, the same in both), every run a Dask task; summarize the final test accuracy, the paired "
             "differences and TOST equivalence.")
    e = sub.add_parser("experiment", help="the chapter's experiment: learning curves over seeds in both "
                                          "frameworks, equivalence tested, on Dask",
                       description=textwrap.fill(about, 88), formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  twinbench experiment                                  # conf1..conf5, both frameworks, 10 seeds, 20 epochs
  twinbench experiment conf5 my.toml --seeds 30 --scheduler tcp://10.0.0.5:8786
  twinbench experiment conf1 --k-folds 5 --seeds 1      # k-fold validation accuracy, mean ± sd
  twinbench experiment --variant book --resume --out runs/book""")
    e.add_argument("specs", nargs="*", help="preset names or TOML files (default conf1 ... conf5)")
    e.add_argument("--seeds", type=int, default=10, help="seeds per spec and framework (default 10)")
    e.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1)")
    e.add_argument("--epochs", type=int, help="override the specs' epochs (default: each spec's, 20)")
    e.add_argument("--frameworks", default=",".join(frameworks.NAMES), help="comma-separated (default all)")
    add_variant(e)
    e.add_argument("--arms", default="mapped,defaults",
                   help="mapped (the spec in every framework), defaults (each framework's own defaults)")
    e.add_argument("--k-folds", type=int, help="also K-fold cross-validation of each spec (validation accuracy)")
    e.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a LocalCluster here)")
    e.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    e.add_argument("--train-examples", type=int, help="train on the first N training images only (a quick look)")
    e.add_argument("--out", default="twinbench-experiment", help="results directory (default ./twinbench-experiment)")
    e.add_argument("--resume", action="store_true", help="skip the runs already finished with the same settings")
    e.add_argument("--overwrite", action="store_true", help="make again the runs already finished in --out")
    e.set_defaults(func=main)

