"""docs/mutation.md from a mutmut run (`tox -e mutation`): mutants tried, killed and surviving
per file, and every survivor with the one-line reason it may survive (EXPLAINED) or flagged
as unexplained. Reads mutmut's own result files under mutants/.

    python -m parity_tests.mutation_report [--before N] [--out docs/mutation.md]
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
from collections import Counter
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
          None: "not checked"}
# survivor (mutant name, or the function's name prefix) -> why a test cannot or need not kill it
EXPLAINED: dict[str, str] = {
    "tf_impl.model.xǁUnbiasedBatchNormalizationǁcall__mutmut_4":
        "mask=None for mask=mask: equivalent, twinbench's network never passes a mask",
    "tf_impl.model.xǁUnbiasedBatchNormalizationǁcall__mutmut_7":
        "the mask argument dropped: equivalent, twinbench's network never passes a mask",
    "tf_impl.optimizers.xǁPaperAdamǁupdate_step__mutmut_17":
        "the step count cast to floatx instead of the variable's dtype: equivalent, a count below 2^24 is exact "
        "in float32 and the power is taken in the variable's dtype",
    "torch_impl.model.xǁBiasedBatchNorm1dǁforward__mutmut_34":
        "F.batch_norm's momentum 0 -> 1 without running statistics: equivalent, the momentum is unused there",
}


def results(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """file -> {mutant name: status}."""
    out = {}
    for meta in sorted((root / "mutants").glob("*/*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        out[str(meta.relative_to(root / "mutants"))[:-5]] = {k: STATUS.get(v, "suspicious") for k, v in codes.items()}
    return out


def reason(name: str) -> str | None:
    return EXPLAINED.get(name) or next((why for key, why in EXPLAINED.items() if name.startswith(key)), None)


def render(res: dict[str, dict[str, str]], before: int | None, command: str) -> str:
    rows, total = [], Counter()
    for file, mutants in res.items():
        c = Counter(mutants.values())
        total.update(c)
        rows.append([file, len(mutants), c["killed"], c["survived"], c["no tests"], c["timeout"] + c["segfault"]])
    rows.append(["total", sum(total.values()), total["killed"], total["survived"], total["no tests"],
                 total["timeout"] + total["segfault"]])
    survivors = [(f, m) for f, ms in res.items() for m, s in ms.items() if s in ("survived", "no tests")]
    lines = ["# Mutation testing of the mapping code", "",
             f"mutmut over `tf_impl/` and `torch_impl/` (model, losses, optimizers, training, fast), killed by the "
             f"parity tests named in `pyproject.toml` `[tool.mutmut]`; `{command}`, "
             f"{datetime.date.today().isoformat()}, commit {_commit()}.", ""]
    if before is not None:
        lines += [f"Surviving mutants (survived or reached by no test): **{before}** before the field-coverage "
                  f"test (`parity_tests/test_fields.py`), **{len(survivors)}** after.", ""]
    lines += [tabulate(rows, headers=["file", "mutants", "killed", "survived", "no tests", "timeout"],
                       tablefmt="github"), "", "## Survivors", ""]
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
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--before", type=int, help="the survivor count of the run before this one, to report beside it")
    p.add_argument("--out", default=str(ROOT / "docs" / "mutation.md"))
    p.add_argument("--command", default="tox -e mutation")
    args = p.parse_args(argv)
    res = results()
    from common.files import write_text
    write_text(args.out, render(res, args.before, args.command))
    unexplained = [m for ms in res.values() for m, s in ms.items() if s in ("survived", "no tests") and not reason(m)]
    print(f"{sum(len(m) for m in res.values())} mutants; {len(unexplained)} survivors unexplained; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
