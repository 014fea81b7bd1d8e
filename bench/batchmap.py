"""The small-model map: conf5's network at each batch size, book and fast, each framework,
on every device present: seconds per 60,000-example epoch and examples per second, and
where the GPU starts to beat the CPU (the question users ask when the chapter's code runs
slower on their GPU).

    twinbench bench --batch-sizes 1,8,32,64,256,1024 [--device cpu|cuda|all] [--out DIR]

Each point: a fresh model from the canonical weights, one epoch to warm up (compiling,
tracing, lazy initialization), then the median of `rounds` epochs' training seconds (the
fit's own `seconds`). Slow points (book at small batches) train on the first examples
only, at least MIN_STEPS steps, and are scaled to 60,000 examples. Sequential, one point
at a time; every point is written to <out>/batch_map.json as it is measured.
"""
from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import frameworks
from bench.matrix import FULL_EPOCH
from common import reference as ref
from common.config import load_spec, replace
from common.environment import cpu_line
from common.files import write_json, write_text

BOOK_EXAMPLES = 6_000  # book points train on at most this many examples per epoch...
MIN_STEPS = 2_000      # ...and at least this many steps (or a whole epoch): a fit call has a fixed cost
ROUNDS = 2


def parse_sizes(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; ValueError naming the bad entry."""
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"--batch-sizes: {part.strip()!r} is not a whole number") from None
        if not 1 <= size <= FULL_EPOCH:
            raise ValueError(f"--batch-sizes: {size} is outside 1..{FULL_EPOCH}")
        sizes.append(size)
    return sorted(set(sizes))


def examples_for(variant: str, batch_size: int) -> int:
    """How many examples one timed epoch of a point visits."""
    if variant == "fast":
        return FULL_EPOCH
    return min(FULL_EPOCH, max(BOOK_EXAMPLES, MIN_STEPS * batch_size))


def measure_point(fw: str, variant: str, batch_size: int, device: str, data: tuple, rounds: int = ROUNDS) -> dict:
    """One point of the map (see the module's docstring)."""
    spec = replace(load_spec("conf5"), **{"training.batch_size": batch_size})
    api = frameworks.get(fw).variant(variant)
    n = examples_for(variant, batch_size)
    x, y, x_test, y_test = data
    model = api.build_model(spec, device=device)
    api.set_weights(model, ref.start_weights(spec, spec.training.seed))
    run = (x[:n], y[:n], x_test[:1], y_test[:1])
    first = api.fit(model, spec, run, epochs=1)[0]
    seconds = [api.fit(model, spec, run, epochs=e + 2, initial_epoch=e + 1)[0]["seconds"] for e in range(rounds)]
    per_epoch = statistics.median(seconds) * FULL_EPOCH / len(run[0])
    return {"framework": fw, "variant": variant, "batch_size": batch_size, "device": device,
            "tier": first.get("tier"), "examples": len(run[0]), "seconds_per_epoch": per_epoch,
            "examples_per_second": FULL_EPOCH / per_epoch, "first_epoch_seconds": first["seconds"]
            + first.get("compile_seconds", 0.0), "rounds": seconds}


def points(sizes: list[int], device: str) -> list[tuple[str, str, int, str]]:
    """(framework, variant, batch size, device) of every point to measure here."""
    out = []
    for dev in ("cuda", "cpu") if device == "all" else (device,):  # the GPU's points first: the new ones
        for fw in frameworks.available():
            if frameworks.get(fw).device_unavailable(dev) is None:
                out += [(fw, v, bs, dev) for v in frameworks.VARIANTS for bs in sizes]
    return out


def run(sizes: list[int], device: str, out: str | Path) -> dict:
    """Measure every point (one line each on stderr), write batch_map.json, .md and .png."""
    from common.data import datasets
    out = Path(out)
    data = datasets(load_spec("conf5"))
    todo = points(sizes, device)
    for line in frameworks.skipped():
        print(f"twinbench bench: {line}", file=sys.stderr, flush=True)
    result = {"environment": frameworks.describe(frameworks.available()), "sizes": sizes, "points": []}
    began = time.perf_counter()
    for k, (fw, variant, bs, dev) in enumerate(todo, 1):
        point = _quiet_retracing(lambda: measure_point(fw, variant, bs, dev, data))
        result["points"].append(point)
        result["wall_seconds"] = time.perf_counter() - began
        write(result, out)  # after every point: a run stopped early keeps what it measured
        print(f"[{k}/{len(todo)}] {fw} {variant} batch {bs} on {dev}: {point['seconds_per_epoch']:.3g} s/epoch, "
              f"{point['examples_per_second']:,.0f} examples/s ({point['tier'] or 'book'})", file=sys.stderr,
              flush=True)
    return result


def _retraced(record: logging.LogRecord) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing(measure: Callable[[], dict]) -> dict:
    """measure(), without TF's warning that fit's train function was traced again.
    TF: Keras's `fit` traces a train function per model and batch size, which the map changes on
    purpose at every point; the warning would interleave with the progress lines."""
    logger = logging.getLogger("tensorflow")
    logger.addFilter(_retraced)
    try:
        return measure()
    finally:
        logger.removeFilter(_retraced)


def write(result: dict, out: Path) -> None:
    """batch_map.json, .md and .png."""
    from plots.batchmap import plot_batch_map
    write_json(out / "batch_map.json", result)
    write_text(out / "batch_map.md", table(result))
    plot_batch_map(result, out / "batch_map.png")


def table(result: dict) -> str:
    """Markdown: one row per (device, framework, variant), one column per batch size; examples per
    second, then seconds per 60,000-example epoch."""
    from tabulate import tabulate
    sizes = result["sizes"]
    keys = sorted({(p["device"], p["framework"], p["variant"]) for p in result["points"]})
    at = {(p["device"], p["framework"], p["variant"], p["batch_size"]): p for p in result["points"]}
    headers = ["device", "framework", "variant", *(f"batch {b}" for b in sizes)]

    def grid(field: str, fmt: str) -> str:
        rows = [[dev, fw, variant, *(format(at[(dev, fw, variant, bs)][field], fmt) if (dev, fw, variant, bs) in at
                                     else "—" for bs in sizes)] for dev, fw, variant in keys]
        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    env = result.get("environment", {})
    cpu = cpu_line(env["cpu_info"]) if env.get("cpu_info") else env.get("cpu", "")
    head = f"# The small-model map: conf5's network at each batch size\n\n{cpu} · " \
           f"{str(env.get('date', ''))[:10]} · commit {str(env.get('git_commit', ''))[:7]}\n\n"
    return (head + "Training examples per second:\n\n" + grid("examples_per_second", ",.0f")
            + "\n\nSeconds per 60,000-example epoch:\n\n" + grid("seconds_per_epoch", ".3g") + "\n")
