"""Layer localisation: both sides run layer by layer on the *same* inputs, so only a layer
that computes differently shows a difference.

Forward: each layer (common.reference.layers.layer_names: hidden, batch norm, activation,
output, loss) gets side A's input to it; the first layer whose outputs differ beyond the
forward tolerance is named. Backward: from the loss down, each layer's local backward pass
(dL/d input and its weights' gradients) gets the same input and the same incoming gradient
(side A's); the first whose results differ beyond the gradient tolerance is named.
"""
from __future__ import annotations

import numpy as np

from common.compare import compare
from common.reference.layers import layer_names
from common.spec import Spec
from common.tolerances import tol


def localise(ra, rb, spec: Spec, x: np.ndarray, y: np.ndarray, dtype: str) -> dict:
    """{"forward": first differing layer or None, "backward": ..., "rows": per-layer comparisons}."""
    names = layer_names(spec)
    inputs, rows, first_fwd = {}, [], None
    u = np.asarray(x, np.float64)
    for name in names:
        inputs[name] = u
        oa, ob = ra.layer_forward(name, u, y), rb.layer_forward(name, u, y)
        c = compare(oa, ob, tol(dtype, "loss" if name == "loss" else "forward"), name=name, dtype=dtype)
        rows.append(_row("forward", name, c))
        first_fwd = first_fwd or (name if not c.passed else None)
        u = np.asarray(oa, np.float64)
    g, first_bwd = np.asarray(1.0), None
    for name in reversed(names):
        (da, pa), (db, pb) = ra.layer_vjp(name, inputs[name], g, y), rb.layer_vjp(name, inputs[name], g, y)
        results = {f"d/d input of {name}": (da, db), **{f"grad:{k}": (pa[k], pb[k]) for k in pb}}
        # one scale for the layer's results, as the parity suite scales a set of gradients: an entry
        # that is 0 in exact arithmetic (a gauge direction under batch norm) is rounding noise
        scale = max(float(np.max(np.abs(np.asarray(vb, np.float64)))) for _, vb in results.values())
        for label, (va, vb) in results.items():
            c = compare(va, vb, tol(dtype, "gradients"), scale, name=label, dtype=dtype)
            rows.append(_row("backward", name, c, label))
            first_bwd = first_bwd or (name if not c.passed else None)
        g = np.asarray(da, np.float64)
    return {"forward": first_fwd, "backward": first_bwd, "layers": names, "rows": rows}


def _row(direction: str, layer: str, c, what: str | None = None) -> dict:
    return {"direction": direction, "layer": layer, "what": what or f"output of {layer}", "max_abs": c.max_abs,
            "max_rel": c.max_rel, "bits": c.bits, "ratio": c.ratio, "where": c.where}
