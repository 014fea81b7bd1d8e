"""The small-model map's figure (bench/batchmap.py): examples per second against batch size,
one line per framework and variant, solid on the CPU and dashed on the GPU, with the batch
size from which the GPU beats the CPU marked where both were measured."""
from __future__ import annotations

from pathlib import Path

from plots.style import figure, legend_outside, save

MARKERS = {"book": "o", "fast": "s"}
STYLES = {"cpu": "-", "cuda": "--"}


def gpu_ahead_from(points: list[dict], fw: str, variant: str) -> int | None:
    """The smallest batch size from which every larger one runs faster on the GPU than on the CPU."""
    speed = {(p["device"], p["batch_size"]): p["examples_per_second"] for p in points
             if p["framework"] == fw and p["variant"] == variant}
    sizes = sorted({bs for dev, bs in speed if ("cpu", bs) in speed and ("cuda", bs) in speed})
    ahead = [bs for bs in sizes if speed[("cuda", bs)] > speed[("cpu", bs)]]
    return next((bs for bs in ahead if all(b in ahead for b in sizes if b >= bs)), None)


def batch_map_figure(result: dict):
    plt = figure()
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    points = result["points"]
    keys = sorted({(p["framework"], p["variant"]) for p in points})
    names = sorted({p["framework"] for p in points})
    for fw, variant in keys:
        colour = f"C{names.index(fw)}"
        for dev in ("cpu", "cuda"):
            line = sorted((p for p in points if (p["framework"], p["variant"], p["device"]) == (fw, variant, dev)),
                          key=lambda p: p["batch_size"])
            if line:
                ax.plot([p["batch_size"] for p in line], [p["examples_per_second"] for p in line], STYLES[dev],
                        color=colour, marker=MARKERS[variant], label=f"{fw} {variant}, {dev}")
        ahead = gpu_ahead_from(points, fw, variant)
        if ahead:
            ax.axvline(ahead, color=colour, lw=0.8, ls=":")
            ax.annotate(f"{fw} {variant}: GPU ahead from batch {ahead}", (ahead, ax.get_ylim()[1]), fontsize=7,
                        rotation=90, va="top", ha="right", color=colour)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(result["sizes"], [str(s) for s in result["sizes"]])
    ax.set_xlabel("batch size")
    ax.set_ylabel("training examples per second (log scale)")
    ax.grid(which="major", alpha=0.3)
    env = result.get("environment", {})
    devices = sorted({p["device"] for p in points})
    gpu = next((v.get("gpu") for v in env.values() if isinstance(v, dict) and v.get("gpu")), None)
    from common.environment import cpu_line
    cpu = cpu_line(env["cpu_info"]) if env.get("cpu_info") else env.get("cpu", "")
    where = cpu + (f" and {gpu}" if gpu else "") + \
        ("" if "cuda" in devices else " (no GPU measured here)")
    ax.set_title(f"conf5's network (784-25-10, Adam): where a larger batch pays\n{where}", fontsize=10)
    legend_outside(fig, [ax], ncol=4)
    return fig


def plot_batch_map(result: dict, path: str | Path) -> Path:
    return save(batch_map_figure(result), path)
