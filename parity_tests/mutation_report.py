"""Run mutmut over the mapping code (`tox -e mutation`), on every mutant or on a seeded sample
stratified per file, then write docs/mutation.md: mutants tried, killed and surviving per file,
and every survivor with the one-line reason it may survive (EXPLAINED) or flagged as
unexplained. Reads mutmut's own result files under mutants/.

    python -m parity_tests.mutation_report [--fraction 0.2 --seed 0] [--before DIR] [--no-run]
    python -m parity_tests.mutation_report --files fast --fraction 0.1 --out docs/mutation-fast.md

A whole run is about 2 hours on 2 cores (each mutant runs the parity tests that reach it);
--fraction F tests the mutants whose number ends in one of 10*F seeded digits (or, below a
tenth, in one of 100*F seeded two-digit endings; the same mutants in every run over the same
sources) and reports only those.
"""
from __future__ import annotations

import argparse
import datetime
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
          None: "not checked"}
ALIVE = ("survived", "no tests")  # what counts as a survivor
# --files: the files a run covers (each mutant of the fast paths compiles a loop: they have a run of their own)
MAPPING = ("tf_impl/losses.py", "tf_impl/model.py", "tf_impl/optimizers.py", "tf_impl/training.py",
           "torch_impl/losses.py", "torch_impl/model.py", "torch_impl/optimizers.py", "torch_impl/training.py",
           "tf_impl/stack.py", "torch_impl/stack.py")
FAST = ("tf_impl/compiled.py", "tf_impl/fast.py", "torch_impl/compiled.py", "torch_impl/fast.py", "torch_impl/_step.py",
        "torch_impl/_graphs.py", "torch_impl/_tuned/__init__.py", "torch_impl/_tuned/saved.py",
        "torch_impl/_tuned/inductor.py")
FILES = {"mapping": MAPPING, "fast": FAST}
SCOPE = {"mapping": "the mapping code (model, stack, losses, optimizers, training)",
         "fast": "the fast paths (tf_impl and torch_impl fast.py and compiled.py, torch_impl/_step.py, "
                 "_graphs.py and the tuned tier torch_impl/_tuned/)"}
# survivor (mutant name, or the function's name prefix) -> why a test cannot or need not kill it
EXPLAINED: dict[str, str] = {
    "torch_impl._step.x_scalar_tables__mutmut_5":
        "the step counts made as int64 instead of the count's dtype: adding the count promotes them back, and counts "
        "below 2^53 are exact either way",
    "torch_impl._step.x_make_loop__mutmut_33":
        "fullgraph=False for the compiled step: the same graph, as the step has no graph break (the loop tier "
        "compiles the same step with fullgraph=True)",
    "torch_impl._step.x_bind__mutmut_5":
        "a dead default (every namespace given to bind already holds torch): the line is gone since",
    "torch_impl._step.x__small_addmm__mutmut_5":
        "addmm decomposed whatever its beta and alpha: the step's addmm calls all have 1, so the sample's tests could "
        "not see it; test_torch_small_matmuls_decompose_only_what_they_mean, added after the sample ran, kills it "
        "(checked by hand)",
    "torch_impl._step.x__trace__mutmut_97":
        "the example scalars traced as float32 0-d tensors whatever the spec's dtype: make_fx records no dtype for "
        "them (a 0-d tensor does not promote the other operand), so the traced step is the same; the float64 fast "
        "tests pass through it",
    "tf_impl.model.xǁUnbiasedBatchNormalizationǁcall__mutmut_4":
        "mask=None for mask=mask: equivalent, twinbench's network never passes a mask",
    "tf_impl.model.xǁUnbiasedBatchNormalizationǁcall__mutmut_7":
        "the mask argument dropped: equivalent, twinbench's network never passes a mask",
    "tf_impl.optimizers.xǁPaperAdamǁupdate_step__mutmut_17":
        "the step count cast to floatx instead of the variable's dtype: equivalent, a count below 2^24 is exact "
        "in float32 and the power is taken in the variable's dtype",
    "torch_impl.model.xǁBiasedBatchNorm1dǁforward__mutmut_34":
        "F.batch_norm's momentum 0 -> 1 without running statistics: equivalent, the momentum is unused there",
    "tf_impl.optimizers.x_get_optimizer_state__mutmut_6":
        "every entry cast to the spec's dtype, not only the step: equivalent, the slots are variables of that dtype",
    "tf_impl.training.x_fit__mutmut_39":
        "Keras fit(shuffle=None) for shuffle=False: equivalent, Keras shuffles arrays only when shuffle is truthy",
    "torch_impl.training.x_fit__mutmut_69":
        "argmax(+1) for argmax(-1) on (batch, classes) outputs: the same axis",
    "torch_impl.training.x_train_step__mutmut_16":
        "labels moved .to(None) instead of to the model's device: equivalent on CPU; a CUDA run (tox -e bench-cuda, "
        "the CUDA parity tests) needs them on the GPU",
    "torch_impl.model.x_device_name__mutmut_9":
        "'CUDA' for 'cuda' in the no-GPU check: killed by tests/app/test_cli.py::test_cuda_without_gpu_is_an_error "
        "(not in the mutation selection)",
    "tf_impl.losses.x_per_example_loss__mutmut_16":
        "MSE averaged over the batch axis first: equivalent, per-example losses are only ever averaged (SpecLoss)",
    "tf_impl.losses.x_per_example_loss__mutmut_29":
        "binary cross-entropy with logits averaged over everything: equivalent, only ever averaged",
    "tf_impl.losses.x_per_example_loss__mutmut_36": "axis=+1 for axis=-1 on (batch, classes): the same axis",
    "tf_impl.losses.x_per_example_loss__mutmut_59": "axis=+1 for axis=-1 on (batch, classes): the same axis",
    "tf_impl.losses.x_one_hot__mutmut_6":
        "one-hot targets in float32 for a float64 spec: equivalent, 0 and 1 are exact and Keras's Loss casts "
        "y_true to y_pred's dtype",
    "torch_impl.training.x_as_inputs__mutmut_19":
        "inputs made on the default device, not the model's: equivalent on CPU; CUDA runs need the model's",
    "torch_impl.losses.x_per_example_loss__mutmut_16":
        "MSE averaged over the batch axis first: equivalent, per-example losses are only ever averaged (SpecLoss)",
    "torch_impl.losses.x_per_example_loss__mutmut_36": "dim=+1 for dim=-1 on (batch, classes): the same axis",
    "torch_impl.losses.x_per_example_loss__mutmut_46":
        "F.cross_entropy's default reduction (mean) then the mean again: equivalent, only ever averaged",
    "torch_impl.losses.x_per_example_loss__mutmut_56":
        "p * sum(p) for p / sum(p): killed by parity_tests/test_grid.py (11 rows with sigmoid outputs and categorical "
        "cross-entropy fail; test_grid is not in the mutation selection, to keep the run in hours)",
    "torch_impl.losses.x_per_example_loss__mutmut_66":
        "upper clip 1 + eps for 1 - eps: differs only where a target's p > 1 - eps, which no test reaches (outputs "
        "start near 0.1): a known gap, worth a saturated-output probe",
}


def results(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """file -> {mutant name: status}, every mutant mutmut generated."""
    out = {}
    for meta in sorted((root / "mutants").glob("*/*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        out[str(meta.relative_to(root / "mutants"))[:-5]] = {k: STATUS.get(v, "suspicious") for k, v in codes.items()}
    return out


def only(res: dict[str, dict[str, str]], digits: list[str] | None, files: str = "mapping") -> dict[str, dict[str, str]]:
    """The sample's mutants of `res` (all when `digits` is None) in the files of `files` (FILES)."""
    return {f: {m: st for m, st in ms.items() if digits is None or in_sample(m, digits)} for f, ms in res.items()
            if f in FILES[files]}


def module_patterns(files: str) -> list[str]:
    """mutmut's name patterns for the mutants of `files` (FILES)."""
    return [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") + ".x*" for f in FILES[files]]


def sample_digits(fraction: float, seed: int) -> list[str]:
    """The sample: mutants whose number ends in one of round(10 * fraction) seeded digits, or,
    for a fraction that is not a whole number of tenths, in one of round(100 * fraction) seeded
    two-digit endings ("07" is mutant 7, 107, ...).

    Chosen by name, so mutmut can be given the sample as patterns before it has named its
    mutants, and two runs over the same sources (before and after a change of the tests)
    try the same mutants."""
    if abs(10 * fraction - round(10 * fraction)) < 1e-9:
        return sorted(random.Random(seed).sample("0123456789", max(1, round(10 * fraction))))
    return sorted(random.Random(seed).sample([f"{i:02d}" for i in range(100)], max(1, round(100 * fraction))))


def in_sample(name: str, digits: list[str]) -> bool:
    width = len(digits[0])
    return f"{int(name.rsplit('_', 1)[1]):0{width}d}"[-width:] in digits


def name_patterns(module: str, digits: list[str] | None) -> list[str]:
    """mutmut's name patterns for the sample's mutants of `module` (a module pattern)."""
    out = []
    for d in digits or [""]:
        out.append(f"{module}__mutmut_*{d}")
        if len(d) == 2 and d[0] == "0" and d != "00":  # a one-digit mutant number: "07" is mutant 7
            out.append(f"{module}__mutmut_{d[1]}")
    return out


def run_mutmut(digits: list[str] | None, max_children: int, files: str = "mapping") -> None:
    """mutmut itself: every mutant (digits None), or the sample's, as name patterns, of `files`."""
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    names = [n for m in module_patterns(files) for n in name_patterns(m, digits)]
    subprocess.run([*cmd, *names], cwd=ROOT, check=True)


def reason(name: str) -> str | None:
    """Why `name` may survive: its own entry, or one for its whole function (a key without a number)."""
    return EXPLAINED.get(name) or next((why for key, why in EXPLAINED.items()
                                        if "__mutmut_" not in key and name.startswith(key)), None)


def compare(after: dict[str, dict[str, str]], before: dict[str, dict[str, str]]) -> tuple[int, int, int]:
    """(mutants tried in both runs, survivors among them before, after)."""
    flat = lambda res: {m: st for ms in res.values() for m, st in ms.items()}  # noqa: E731
    a, b = flat(after), flat(before)
    both = [m for m in a if a[m] != "not checked" and b.get(m, "not checked") != "not checked"]
    return len(both), sum(b[m] in ALIVE for m in both), sum(a[m] in ALIVE for m in both)


def render(res: dict[str, dict[str, str]], before: tuple[int, int, int] | None, command: str, generated: int,
           sample: str = "", files: str = "mapping") -> str:
    rows, total = [], Counter()
    for file, mutants in res.items():
        c = Counter(mutants.values())
        total.update(c)
        rows.append([file, len(mutants), c["killed"], c["survived"], c["no tests"], c["timeout"] + c["segfault"],
                     c["not checked"]])
    rows.append(["total", sum(total.values()), total["killed"], total["survived"], total["no tests"],
                 total["timeout"] + total["segfault"], total["not checked"]])
    survivors = [(f, m) for f, ms in res.items() for m, s in ms.items() if s in ALIVE]
    tried = sum(total.values())
    scope = ("every mutant" if tried == generated else
             f"a seeded sample of {tried} of the {generated} mutants (those whose number ends in {sample})")
    lines = [f"# Mutation testing of {SCOPE[files]}", "",
             f"mutmut over {SCOPE[files]}, {scope}, killed by the parity tests named in `pyproject.toml` "
             f"`[tool.mutmut]`; `{command}`, {datetime.date.today().isoformat()}, commit {_commit()}.", ""]
    if before is not None:
        lines += [f"Before and after the field-coverage issue, on the {before[0]} mutants both runs tried: "
                  f"**{before[1]}** survive (survived, or reached by no test) the parity tests as they were "
                  f"before it (without `test_fields.py`, `test_fit_contract.py`, `test_properties.py`), "
                  f"**{before[2]}** survive them now.", ""]
    lines += [tabulate(rows, headers=["file", "mutants", "killed", "survived", "no tests", "timeout",
                                      "not checked"], tablefmt="github"), "", "## Survivors", ""]
    for file, name in survivors:
        why = reason(name)
        lines.append(f"- `{name}` ({res[file][name]}): {why or 'UNEXPLAINED'}")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fraction", type=float, default=1.0, help="share of each file's mutants to test (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--max-children", type=int, default=2)
    p.add_argument("--no-run", action="store_true", help="report the results already under mutants/")
    p.add_argument("--before", metavar="DIR", help="the directory of a run with the tests before a change (its mutants/): "
                   "survivors then and now, on the mutants both runs tried")
    p.add_argument("--files", choices=list(FILES), default="mapping",
                   help="mapping: the mapping code (default); fast: the fast paths and the tuned tier")
    p.add_argument("--out", help="the report (default docs/mutation.md, --files fast: docs/mutation-fast.md)")
    p.add_argument("--command", default="tox -e mutation")
    args = p.parse_args(argv)
    args.out = args.out or str(ROOT / "docs" / ("mutation-fast.md" if args.files == "fast" else "mutation.md"))
    if not 0 < args.fraction <= 1:
        p.error(f"--fraction must be in (0, 1], got {args.fraction}")
    digits = sample_digits(args.fraction, args.seed) if args.fraction < 1 else None
    if not args.no_run:
        run_mutmut(digits, args.max_children, args.files)
    everything = only(results(), None, args.files)
    res = only(everything, digits, args.files)
    from common.files import write_text
    before = compare(res, only(results(Path(args.before)), digits, args.files)) if args.before else None
    write_text(args.out, render(res, before, args.command, sum(len(m) for m in everything.values()),
                                 ", ".join(digits or []), args.files))
    unexplained = [m for ms in res.values() for m, s in ms.items() if s in ALIVE and not reason(m)]
    print(f"{sum(len(m) for m in res.values())} mutants; {len(unexplained)} survivors unexplained; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
