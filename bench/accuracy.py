"""Accuracy over seeds: conf5 trained for a few epochs from several seeds in each
framework, with the fastest variant that passed the parity gate; mean ± std,
Welch's t-test and a TOST equivalence test on the final test accuracy.

Seed s sets both the canonical initial weights (common.reference.init_weights)
and the shuffle order (training.seed), the same for both frameworks. Each run is
stored in <out>/accuracy.json as soon as it ends, so --resume continues a study.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from scipy import stats

from bench.measure import canonical_weights, variant_api
from bench.results import DONE
from common.files import write_json
from common.spec import Spec

MARGIN, ALPHA = 0.005, 0.05


def fastest_gated(records: dict[str, dict], framework: str, preset: str) -> dict | None:
    """The measured (so gate-passing) row of `framework` on `preset` with the lowest median."""
    ok = [r for r in records.values() if r.get("framework") == framework and r.get("preset") == preset
          and r.get("status") == DONE]
    return min(ok, key=lambda r: r["summary"]["median"], default=None)


def compare_samples(a: list[float], b: list[float], margin: float = MARGIN, alpha: float = ALPHA) -> dict:
    """Welch's t-test of mean(a) = mean(b) and TOST: both one-sided Welch tests that the
    difference lies above -margin and below +margin; equivalent when max(p) < alpha."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    welch = stats.ttest_ind(a, b, equal_var=False)
    lower = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater")
    upper = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less")
    tost_p = float(max(lower.pvalue, upper.pvalue))
    return {"difference": float(a.mean() - b.mean()), "welch_t": float(welch.statistic),
            "welch_p": float(welch.pvalue), "margin": margin, "alpha": alpha,
            "tost_p_lower": float(lower.pvalue), "tost_p_upper": float(upper.pvalue), "tost_p": tost_p,
            "equivalent": bool(tost_p < alpha)}


def train_seed(row: dict, spec: Spec, seed: int, epochs: int, data: tuple) -> list[dict]:
    """Train one framework's variant from seed `seed`; the fit's history (test set per epoch)."""
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))
    api = variant_api(row["framework"], row["variant"])
    model = api.build_model(spec, device=row["device"])
    api.set_weights(model, canonical_weights(spec, seed))
    return api.fit(model, spec, data, epochs=epochs)


def run_study(out: str | Path, records: dict[str, dict], spec: Spec, data: tuple, seeds: tuple[int, ...],
              epochs: int, resume: bool) -> dict:
    """Train every (framework, seed) still missing; store after each; return the study."""
    path = Path(out) / "accuracy.json"
    key = {"preset": spec.name, "epochs": epochs, "seeds": list(seeds)}
    study = json.loads(path.read_text()) if resume and path.exists() else {}
    if {k: study.get(k) for k in key} != key:
        study = {**key, "runs": {}}
    study["frameworks"] = {}
    for fw in ("tf", "torch"):
        row = fastest_gated(records, fw, spec.name)
        if row is None:
            study["frameworks"][fw] = {"reason": f"no measured {spec.name} row of {fw} passed the parity gate"}
            continue
        runs = []
        for seed in seeds:
            name = f"{fw}-{seed}"
            run = study["runs"].get(name)
            if run is None or run.get("row") != row["id"]:
                run = {"row": row["id"], "history": train_seed(row, spec, seed, epochs, data)}
                study["runs"][name] = run
                write_json(path, study)
            runs.append(run)
        accs = [r["history"][-1]["val_accuracy"] for r in runs]
        study["frameworks"][fw] = {"row": row["id"], "variant": row["variant"], "device": row["device"],
                                   "accuracies": accs, "mean": float(np.mean(accs)),
                                   "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                                   "histories": [r["history"] for r in runs]}
    fws = study["frameworks"]
    if all(fws.get(f, {}).get("accuracies") for f in ("tf", "torch")) and len(seeds) > 1:
        study["stats"] = compare_samples(fws["tf"]["accuracies"], fws["torch"]["accuracies"])
    write_json(path, study)
    return study
