"""Load, validate and print specs.

A spec file is TOML with the sections of `common.spec.Spec`: top-level `name`
and `description`, then `[network]` (with `[network.batch_norm]` and inline
tables for the initializers), `[loss]`, `[optimizer]` (its `name` picks the
optimizer) and `[training]`. A missing key takes the spec's default; a file
may start from a preset with `base = "conf4"` and override only what differs.
Every error names the dotted key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from common import spec as S
from common.layers import LAYERS, Layer
from common.stack import StackError, walk

PRESET_DIR = Path(__file__).with_name("presets")


class SpecError(ValueError):
    """A spec that is malformed or that cannot be trained as written."""


def preset_names() -> list[str]:
    """Names of the TOML presets shipped in common/presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_spec(name_or_path: str | Path) -> S.Spec:
    """The spec of a preset name (``conf1``) or of a TOML file path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        if str(name_or_path) not in preset_names():
            raise SpecError(f"unknown preset {name_or_path!r}; presets: {', '.join(preset_names())}"
                            " (or give the path of a .toml file)")
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    own_description = "description" in data
    if "base" in data:
        base = data.pop("base")
        if not isinstance(base, str):
            raise SpecError(f"{path}: base: expected a preset name or path, got {base!r}")
        base_path = Path(base) if Path(base).suffix else base
        if isinstance(base_path, Path) and not base_path.is_absolute():
            base_path = path.parent / base_path
        base_spec = load_spec(base_path)
        base_dict = spec_to_dict(base_spec)
        over = data.get("network")
        if isinstance(over, dict) and set(over) - {"input_shape", "layers"}:  # short-form keys over the base's MLP
            if base_spec.network.chapter_mlp is None:
                raise SpecError(f"{path}: network: the chapter MLP's short-form keys ({', '.join(sorted(over))})"
                                f" need a base whose network is that MLP; {base} has another stack")
            base_dict["network"] = dataclasses.asdict(base_spec.network.chapter_mlp)
        data = _merge(base_dict, data)
    try:
        spec = spec_from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    # a file that describes itself keeps its words; otherwise (a derived file too) the
    # description is generated from the resolved values, never inherited from the base
    return spec if own_description else dataclasses.replace(spec, description=describe(spec))


def spec_from_dict(data: dict[str, Any]) -> S.Spec:
    """Build and validate a Spec from plain data (parsed TOML or JSON)."""
    spec = _build(S.Spec, data, "")
    _check_combinations(spec)
    return spec


def spec_to_dict(spec: S.Spec) -> dict[str, Any]:
    """Plain nested dicts and lists (what JSON gives back); `spec_from_dict(spec_to_dict(s)) == s`."""
    return _plain(dataclasses.asdict(spec))


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def validate(spec: S.Spec) -> None:
    """Check a Spec however it was made (TOML or code): every field's type, allowed
    values and range, then the combinations no framework can train as written."""
    _build(S.Spec, spec_to_dict(spec), "")
    _check_combinations(spec)


def _check_combinations(spec: S.Spec) -> None:
    """Cross-field rules: combinations that no framework can train as the spec says."""
    try:
        walked = walk(spec.network)
    except StackError as exc:
        raise SpecError(str(exc)) from None
    if not walked or walked[-1].output_shape != (10,):
        raise SpecError(f"network.layers: the last layer must give MNIST's 10 outputs, got shape"
                        f" {walked[-1].output_shape if walked else tuple(spec.network.input_shape)}")
    out, loss = spec.network.output_activation, spec.loss
    inner = [w for w in walked[:-1] if getattr(w.layer, "activation", None) == "log_softmax"]
    if inner:
        raise SpecError(f"network.layers[{inner[0].index}] ({inner[0].name}): log_softmax is an output activation"
                        " (for loss.name = 'nll'); only the last layer may have it")
    if (out == "log_softmax") != (loss.name == "nll"):
        raise SpecError(f"loss.name: 'nll' takes the log-probabilities of a log_softmax output and a log_softmax"
                        f" output needs it; got loss.name = '{loss.name}' with network.output_activation = '{out}'")
    if out == "linear" and loss.name != "mse":
        raise SpecError(f"loss.name: {loss.name} needs probabilities; network.output_activation"
                        " = 'linear' is allowed only with loss.name = 'mse'")
    if loss.formula == "logits":
        need = {"categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid"}.get(loss.name)
        if need and out != need:
            raise SpecError(f"loss.formula: 'logits' for {loss.name} needs network.output_activation"
                            f" = '{need}', got '{out}'; use loss.formula = 'clipped'")
    t, o = spec.training, spec.optimizer
    if t.schedule.gamma != 1.0 and o.name == "sgd" and o.momentum:
        raise SpecError("training.schedule.gamma: a decaying rate with SGD momentum has two forms (Keras's velocity"
                        " keeps each step's rate, PyTorch's buffer takes the current one); use optimizer.momentum = 0"
                        " or another optimizer")
    if t.standardize and (t.input_mean, t.input_std) != (0.0, 1.0):
        raise SpecError("training.input_mean: a given mean and std apply only with training.standardize = false"
                        " (standardize computes them from the training images)")
    if any(w.layer.type == "batch_norm" for w in walked) and spec.training.batch_size < 2:
        raise SpecError("training.batch_size: batch normalization in training needs at least 2"
                        f" examples per batch, got {spec.training.batch_size}"
                        " (or set network.batch_norm.mode = 'none')")


def step_key(spec: S.Spec) -> S.Spec:
    """The spec with every field that does not change what one training step computes made
    neutral (labels, seed and shuffling, epochs, standardization, evaluation split): two
    specs with the same key can share a compiled step or loop."""
    t = dataclasses.replace(spec.training, seed=0, shuffle=True, epochs=1, standardize=True, evaluation="test",
                            validation_split=0.1, k_folds=0, input_divisor=1.0, input_mean=0.0, input_std=1.0)
    return dataclasses.replace(spec, name="", description="", training=t)


def replace(spec: S.Spec, **changes: Any) -> S.Spec:
    """The spec with dotted fields replaced (not validated: call validate() where it matters;
    build_model does): replace(spec, **{"training.dtype": "float64", "optimizer.epsilon": 1e-8})."""
    short = {k: v for k, v in changes.items() if k.startswith("network.") and k.split(".")[1] in S.MLP_FIELDS}
    if short:  # the chapter MLP's short-form paths, applied together to its short form, then restacked
        mlp = spec.network.mlp
        for key, value in short.items():
            mlp = _replace_path(mlp, key.split(".")[1:], value, key)
        spec = dataclasses.replace(spec, network=dataclasses.replace(spec.network, layers=mlp.layers()))
    for key, value in changes.items():
        if key not in short:
            spec = _replace_path(spec, key.split("."), value, key)
    return spec


def _replace_path(obj: Any, path: list[str], value: Any, key: str) -> Any:
    if not dataclasses.is_dataclass(obj) or path[0] not in {f.name for f in dataclasses.fields(obj)}:
        raise SpecError(f"{key}: unknown field")
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value, key)})


def describe(spec: S.Spec) -> str:
    """A one-line description generated from the resolved values (what a spec file that sets
    no `description` of its own shows), e.g. "tanh hidden x25 / sigmoid output, uniform(-0.1,
    0.1) kernels, zero biases, MSE, SGD lr 0.01, batch 1"."""
    loss, o, t = spec.loss, spec.optimizer, spec.training
    parts = _mlp_text(spec.network.mlp) if spec.network.chapter_mlp else [_stack_text(spec.network)]
    names = {"mse": "MSE", "binary_crossentropy": "binary cross-entropy", "categorical_crossentropy":
             "categorical cross-entropy", "nll": "negative log-likelihood"}
    parts.append(names[loss.name] + ("" if loss.name in ("mse", "nll") else f" ({loss.formula}"
                                     + (f", epsilon {loss.epsilon:g})" if loss.formula == "clipped" else ")")))
    parts.append(_optimizer_text(o))
    if t.schedule.gamma != 1.0:
        every = "each epoch" if t.schedule.step_epochs == 1 else f"every {t.schedule.step_epochs} epochs"
        parts[-1] += f", x{t.schedule.gamma:g} {every}"
    parts.append(f"batch {t.batch_size}" + (f", {t.dtype}" if t.dtype != "float32" else ""))
    return ", ".join(parts)


def _stack_text(net: S.Network) -> str:
    """A layer stack in a line: "28x28x1 -> conv2d 32 3x3 relu -> max_pool2d 2x2 -> ..."."""
    parts = ["x".join(map(str, net.input_shape))]
    for layer in net.layers:
        text = {"dense": lambda x: f"dense {x.units}", "conv2d": lambda x: f"conv2d {x.filters} "
                f"{x.kernel_size[0]}x{x.kernel_size[1]}" + (f" stride {x.strides[0]}x{x.strides[1]}" if
                                                            x.strides != (1, 1) else "") + f" {x.padding}",
                "max_pool2d": lambda x: f"max_pool2d {x.pool_size[0]}x{x.pool_size[1]}",
                "dropout": lambda x: f"dropout {x.rate:g}", "batch_norm": lambda x: "batch norm",
                }.get(layer.type, lambda x: x.type)(layer)
        act = getattr(layer, "activation", "linear")
        parts.append(text + ("" if act == "linear" else f" {act}") if layer.type != "activation" else act)
    return " -> ".join(parts)


def _mlp_text(net: S.ChapterMLP) -> list[str]:
    act = net.hidden_activation + (f"({net.leaky_relu_slope:g})" if net.hidden_activation == "leaky_relu" else "")
    parts = [f"{act} hidden x{net.hidden_units} / {net.output_activation} output"]
    bn = net.batch_norm
    if bn.mode != "none":
        parts.append(f"batch norm {bn.mode.replace('_', ' ')} (momentum {bn.momentum:g}, epsilon {bn.epsilon:g}, "
                     f"{bn.running_variance} running variance)")
    kernels = {_init_text(net.hidden_kernel_init), _init_text(net.output_kernel_init)}
    parts.append(f"{kernels.pop()} kernels" if len(kernels) == 1 else
                 f"{_init_text(net.hidden_kernel_init)} hidden / {_init_text(net.output_kernel_init)} output kernels")
    biases = {_init_text(net.hidden_bias_init), _init_text(net.output_bias_init)}
    parts.append("zero biases" if biases == {"zeros"} else "biases " + " / ".join(sorted(biases)))
    return parts


def optimizer_form(spec: S.Spec) -> str:
    """The spec optimizer's form in words, for the records that say which framework's class runs
    it (each implementation's describe_optimizer): "adam with Keras epsilon-hat form", "rmsprop
    with epsilon outside the root (PyTorch's form)"."""
    o = spec.optimizer
    if o.name == "adam":
        form = "Keras epsilon-hat form" if o.epsilon_convention == "keras" else "the paper's epsilon form"
    elif o.name in ("sgd", "adadelta"):  # one form, both frameworks'
        return o.name
    elif o.epsilon_placement == "inside_sqrt":
        form = "epsilon inside the root (Keras's form)"
    else:
        form = "epsilon outside the root (PyTorch's form)"
    return f"{o.name} with {form}"


def _init_text(init: S.Initializer) -> str:
    if init.name == "uniform":
        return f"uniform({init.low:g}, {init.high:g})"
    if init.name == "constant":
        return f"constant({init.value:g})"
    untruncated = init.name in ("glorot_normal", "he_normal") and not init.truncated
    return init.name + (" (untruncated)" if untruncated else "")


def _optimizer_text(o: S.Optimizer) -> str:
    lr = f"lr {o.learning_rate:g}"
    if o.name == "sgd":
        extra = f", momentum {o.momentum:g}{' nesterov' if o.nesterov else ''}" if o.momentum else ""
        return f"SGD {lr}{extra}"
    if o.name == "adagrad":
        return (f"Adagrad {lr} (initial accumulator {o.initial_accumulator:g}, epsilon {o.epsilon:g} "
                f"{o.epsilon_placement.replace('_', ' ')})")
    if o.name == "rmsprop":
        return (f"RMSprop {lr} (rho {o.rho:g}{', centered' if o.centered else ''}, epsilon {o.epsilon:g} "
                f"{o.epsilon_placement.replace('_', ' ')})")
    if o.name == "adadelta":
        return f"Adadelta {lr} (rho {o.rho:g}, epsilon {o.epsilon:g})"
    return f"Adam {lr} (betas {o.beta_1:g}/{o.beta_2:g}, epsilon {o.epsilon:g} {o.epsilon_convention} form)"


def to_toml(spec: S.Spec) -> str:
    """The resolved spec as TOML text (every value explicit)."""
    data = spec_to_dict(spec)
    lines = [f"name = {_toml_value(data.pop('name'))}",
             f"description = {_toml_value(data.pop('description'))}"]
    for section, values in data.items():
        if section == "network":
            lines += ["", "[network]", f"input_shape = {_toml_value(values['input_shape'])}"]
            for layer in values["layers"]:  # an empty name (the default one) is left out
                lines += ["", "[[network.layers]]"] + [f"{k} = {_toml_value(v)}" for k, v in layer.items()
                                                       if k != "name" or v]
            continue
        nested = {k: v for k, v in values.items() if isinstance(v, dict) and "name" not in v}
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k not in nested]
        for sub, subvalues in nested.items():
            lines += ["", f"[{section}.{sub}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in subvalues.items()]
    return "\n".join(lines) + "\n"


# --- internals ---

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):  # an initializer: only the fields that apply to its name
        meta = {f.name: f.metadata.get("applies") for f in dataclasses.fields(S.Initializer)}
        items = [(k, x) for k, x in v.items() if not meta[k] or v["name"] in meta[k]]
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not ("name" in v and v.get("name") != out[k].get("name")):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _build(cls: type, data: Any, where: str) -> Any:
    if cls is S.Optimizer or typing.get_origin(cls) is typing.Union:
        key, kinds = ("type", LAYERS) if cls is Layer else ("name", S.OPTIMIZERS)
        name = data.get(key, None if cls is Layer else "sgd") if isinstance(data, dict) else None
        if name not in kinds:
            raise SpecError(f"{where}.{key}: expected one of {sorted(kinds)}, got {name!r}")
        cls = kinds[name]
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a table, got {data!r}")
    if cls is S.Network and set(data) - {"input_shape", "layers"}:
        return _chapter_mlp(data, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"{_key(where, unknown[0])}: unknown key; allowed: {', '.join(fields)}")
    kwargs = {name: _value(hints[name], fields[name], data[name], _key(where, name)) for name in data}
    if cls is S.Initializer:
        _check_applies(fields, kwargs, where)
    return cls(**kwargs)


def _chapter_mlp(data: dict, where: str) -> S.Network:
    """A [network] table of the old (short) form: the chapter MLP's keys, as its layer stack."""
    mixed = sorted(set(data) & {"input_shape", "layers"})
    if mixed:
        raise SpecError(f"{_key(where, mixed[0])}: the layer-stack form cannot be mixed with the chapter MLP's"
                        f" short-form keys ({', '.join(sorted(set(data) - set(mixed)))}); use one form")
    try:
        return S.Network(layers=_build(S.ChapterMLP, data, where).layers())
    except SpecError as exc:
        if ": unknown key;" in str(exc):
            raise SpecError(f"{exc}; or the layer-stack form: input_shape = [28, 28, 1] and"
                            " [[network.layers]] tables with type = \"conv2d\", ...") from None
        raise


def _value(tp: Any, f: dataclasses.Field, v: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if v not in typing.get_args(tp):
            allowed = ", ".join(repr(a) for a in typing.get_args(tp))
            raise SpecError(f"{key}: expected one of {allowed}, got {v!r}")
        return v
    if dataclasses.is_dataclass(tp) or origin is typing.Union:
        return _build(tp, v, key)
    if origin is tuple:
        return _tuple(typing.get_args(tp), f, v, key)
    if tp is bool:
        if not isinstance(v, bool):
            raise SpecError(f"{key}: expected true or false, got {v!r}")
        return v
    if tp in (int, float):
        ok = isinstance(v, int) if tp is int else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise SpecError(f"{key}: expected {'an integer' if tp is int else 'a number'}, got {v!r}")
        _check_range(f, v, key)
        return tp(v)
    if tp is str:
        if not isinstance(v, str):
            raise SpecError(f"{key}: expected a string, got {v!r}")
        return v
    raise SpecError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _tuple(args: tuple, f: dataclasses.Field, v: Any, key: str) -> tuple:
    """A tuple[X, ...] or tuple[X, Y] from a TOML array, each item checked as the field says."""
    if not isinstance(v, (list, tuple)):
        raise SpecError(f"{key}: expected an array, got {v!r}")
    items = args[:1] * len(v) if args[-1] is Ellipsis else args
    if len(items) != len(v) or not v:
        raise SpecError(f"{key}: expected {len(items) or 'at least one'} item{'s' if len(items) != 1 else ''}, got {len(v)}")
    return tuple(_value(tp, f, x, f"{key}[{i}]") for i, (tp, x) in enumerate(zip(items, v)))


def _check_range(f: dataclasses.Field, v: float, key: str) -> None:
    lo, hi = f.metadata.get("range", (None, None))
    is_open = f.metadata.get("open", False)
    below = lo is not None and (v <= lo if is_open else v < lo)
    above = hi is not None and v > hi
    if below or above:
        low = f"> {lo}" if is_open else f">= {lo}"
        bound = low if hi is None else f"{low} and <= {hi}"
        raise SpecError(f"{key}: {v!r} out of range; allowed: {bound}")


def _check_applies(fields: dict, kwargs: dict, where: str) -> None:
    name = kwargs.get("name", "zeros")
    for k in kwargs:
        applies = fields[k].metadata.get("applies")
        if applies and name not in applies and kwargs[k] != fields[k].default:
            raise SpecError(f"{_key(where, k)}: does not apply to initializer {name!r}"
                            f" (only to {', '.join(applies)})")


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
