"""Accuracy over seeds: conf5 trained for a few epochs from several seeds in each
framework, with the fastest variant that passed its checks; mean ± std, and a paired TOST
equivalence test on the final test accuracy (seed by seed: common.stats).

Seed s sets both the canonical initial weights (common.reference.init_weights)
and the shuffle order (training.seed), the same for both frameworks. Each run is
stored in <out>/accuracy.json as soon as it ends, so --resume continues a study.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

import frameworks
from bench.measure import variant_api
from bench.results import DONE
from common import reference as ref
from common.files import write_json
from common.spec import Spec
from common.stats import compare_samples

MARGIN, ALPHA = 0.005, 0.05


def fastest_gated(records: dict[str, dict], framework: str, preset: str) -> dict | None:
    """The measured (so gate-passing) row of `framework` on `preset` with the lowest median."""
    ok = [r for r in records.values() if r.get("framework") == framework and r.get("preset") == preset
          and r.get("status") == DONE]
    return min(ok, key=lambda r: r["summary"]["median"], default=None)


def train_seed(row: dict, spec: Spec, seed: int, epochs: int, data: tuple) -> list[dict]:
    """Train one framework's variant from seed `seed`; the fit's history (test set per epoch)."""
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))
    api = variant_api(row["framework"], row["variant"])
    model = api.build_model(spec, device=row["device"])
    api.set_weights(model, ref.start_weights(spec, seed))
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
    for fw in frameworks.NAMES:
        if frameworks.get(fw).missing():
            study["frameworks"][fw] = {"reason": f"skipped: {frameworks.get(fw).missing()}"}
            continue
        row = fastest_gated(records, fw, spec.name)
        if row is None:
            ran = any(r.get("framework") == fw and r.get("preset") == spec.name for r in records.values())
            study["frameworks"][fw] = {"reason": f"no measured {spec.name} row of {fw} passed the parity gate" if ran
                                       else f"no {spec.name} row of {fw} in this run"}
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
    if all(fws.get(f, {}).get("accuracies") for f in frameworks.NAMES) and len(seeds) > 1:
        study["stats"] = compare_samples(*(fws[f]["accuracies"] for f in frameworks.NAMES), MARGIN, ALPHA,
                                         paired=True)  # seed s: the same start and order in both frameworks
    write_json(path, study)
    return study
