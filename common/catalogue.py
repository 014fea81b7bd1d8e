"""The catalogue of Keras-vs-PyTorch default differences: what each entry says.

The parity suite measures every entry (parity_tests/test_defaults*.py) and renders
docs/differences.md from this text and its numbers (`tox -e catalogue`); the
side-by-side page and `twinbench diff` link to the entries. FIELDS names the spec
fields each entry is about.
"""
from __future__ import annotations

from pathlib import Path

from common.defaults import fields_of

DOC = Path(__file__).resolve().parents[1] / "docs" / "differences.md"

# id -> (title, difference, keras, pytorch, twinbench mapping)
ENTRIES: dict[str, tuple[str, str, str, str, str]] = {
    "adam-epsilon": (
        "Adam epsilon value",
        "The default epsilon of Adam differs by a factor of ten.",
        "`keras.optimizers.Adam(epsilon=1e-7)`",
        "`torch.optim.Adam(eps=1e-8)`",
        "`optimizer.epsilon` (default 1e-7) passed explicitly by both frameworks' make_optimizer "
        "(`*/optimizers.py`)."),
    "adam-epsilon-placement": (
        "Adam epsilon placement",
        "Keras adds epsilon to sqrt(v) before the bias correction (\"epsilon hat\"), PyTorch after it.",
        "`w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`",
        "`w -= lr * m_hat / (sqrt(v_hat) + eps)` (Kingma & Ba, Algorithm 1)",
        "`optimizer.epsilon_convention` keras|paper: each framework's own Adam for its own form; a spec rule for "
        "the other (`tf_impl/optimizers.py` PaperAdam, `torch_impl/optimizers.py` SpecOptimizer `_adam`)."),
    "rmsprop-epsilon-placement": (
        "RMSprop epsilon placement",
        "Keras adds epsilon inside the square root, PyTorch outside (and defaults it to 1e-8).",
        "`w -= lr * g / sqrt(v + eps)`, eps 1e-7",
        "`w -= lr * g / (sqrt(v) + eps)`, eps 1e-8",
        "`optimizer.epsilon_placement`: each framework's own RMSprop for its own placement; a spec rule for the "
        "other (`tf_impl/optimizers.py` OutsideSqrtRMSprop, `torch_impl/optimizers.py` SpecOptimizer `_rmsprop`)."),
    "adagrad-epsilon-placement": (
        "Adagrad epsilon placement",
        "Keras adds epsilon inside the square root, PyTorch outside (and defaults it to 1e-10).",
        "`w -= lr * g / sqrt(acc + eps)`, eps 1e-7",
        "`w -= lr * g / (sqrt(acc) + eps)`, eps 1e-10",
        "`optimizer.epsilon_placement`: each framework's own Adagrad for its own placement; a spec rule for the "
        "other (`tf_impl/optimizers.py` OutsideSqrtAdagrad, `torch_impl/optimizers.py` SpecOptimizer `_adagrad`)."),
    "adagrad-initial-accumulator": (
        "Adagrad initial accumulator",
        "The accumulator of squared gradients starts at 0.1 in Keras, at 0 in PyTorch.",
        "`initial_accumulator_value=0.1`",
        "`initial_accumulator_value=0`",
        "`optimizer.initial_accumulator` (default 0.1) passed to both constructors "
        "(`initial_accumulator_value`; the spec rule's SpecOptimizer starts there too)."),
    "rmsprop-rho": (
        "RMSprop decay rate",
        "The decay of the squared-gradient average is 0.9 in Keras (`rho`), 0.99 in PyTorch (`alpha`).",
        "`rho=0.9`",
        "`alpha=0.99`",
        "`optimizer.rho`: Keras's `rho`, torch.optim.RMSprop's `alpha` (`torch_impl/optimizers.py` make_optimizer)."),
    "adadelta-defaults": (
        "Adadelta defaults",
        "The same rule with other defaults: decay rate 0.95 in Keras, 0.9 in PyTorch; epsilon 1e-7 and 1e-6; "
        "the learning rate 0.001 and 1.0 (PyTorch's MNIST example passes lr=1.0).",
        "`keras.optimizers.Adadelta()`: learning_rate 0.001, rho 0.95, epsilon 1e-7",
        "`torch.optim.Adadelta()`: lr 1.0, rho 0.9, eps 1e-6",
        "`optimizer.learning_rate`, `optimizer.rho`, `optimizer.epsilon` passed to both constructors "
        "(`*/optimizers.py` make_optimizer)."),
    "bn-momentum": (
        "BatchNorm momentum convention",
        "Keras's momentum weights the old moving value, PyTorch's weights the new batch statistic.",
        "`moving = 0.99 * moving + 0.01 * batch` (momentum=0.99)",
        "`running = 0.9 * running + 0.1 * batch` (momentum=0.1)",
        "`network.batch_norm.momentum` in the Keras sense; `torch_impl/model.py` batch_norm_layer passes `1 - momentum`."),
    "bn-epsilon": (
        "BatchNorm epsilon",
        "The variance epsilon inside the square root differs.",
        "`epsilon=1e-3`",
        "`eps=1e-5`",
        "`network.batch_norm.epsilon` (default 1e-3) passed to both layers."),
    "bn-running-variance": (
        "BatchNorm running variance: biased vs unbiased",
        "Both normalize with the biased batch variance; the moving variance takes the biased one in "
        "Keras, the unbiased (n / (n - 1)) one in PyTorch.",
        "`moving_var <- m * moving_var + (1 - m) * var_biased`",
        "`running_var <- (1 - p) * running_var + p * var_biased * n / (n - 1)`",
        "`network.batch_norm.running_variance`: `tf_impl/model.py` UnbiasedBatchNormalization, "
        "`torch_impl/model.py` BiasedBatchNorm1d."),
    "bn-batch-size-1": (
        "BatchNorm with one example per batch in training",
        "With a single example the batch variance is 0: Keras normalizes every unit to beta silently "
        "(the hidden layer carries no information), PyTorch raises.",
        "returns beta, no error",
        "`ValueError: Expected more than 1 value per channel when training`",
        "`common/config.py` validate rejects batch norm with `training.batch_size` < 2 (SpecError), "
        "called by both build_model functions."),
    "cce-clipping": (
        "Categorical cross-entropy: clipped probabilities vs logits",
        "Keras's loss on probabilities clips p / sum(p) to [1e-7, 1 - 1e-7] (loss capped at 16.1, "
        "gradient 0 beyond); PyTorch's cross_entropy works on logits, exact.",
        "`-sum t log clip(p / sum p, eps, 1 - eps)`",
        "`-sum t log_softmax(z)`",
        "`loss.formula` clipped|logits: `tf_impl/losses.py` and `torch_impl/losses.py` per_example_loss."),
    "bce-clipping": (
        "Binary cross-entropy: clipped probabilities vs log clamp vs logits",
        "Keras clips p to [1e-7, 1 - 1e-7] (loss <= 16.1 per output); torch's BCELoss clamps log(p) "
        "at -100; BCEWithLogits is exact.",
        "`-mean(t log clip(p) + (1 - t) log(1 - clip(p)))`",
        "`BCELoss: -mean(t max(log p, -100) + ...)`; `BCEWithLogitsLoss` exact softplus form",
        "`loss.formula` clipped|logits: `tf_impl/losses.py`, `torch_impl/losses.py` (clip, never BCELoss)."),
    "leaky-relu-slope": (
        "Leaky ReLU default slope",
        "The negative-side slope of the default layer differs by 30x.",
        "`keras.layers.LeakyReLU()` negative_slope 0.3",
        "`nn.LeakyReLU()` negative_slope 0.01",
        "`network.leaky_relu_slope` (default 0.01) passed to both layers (`*/model.py` activation_layer); "
        "in float64 runs tf_impl's slope is still float32-rounded (see keras-float32-hyperparameters)."),
    "he-normal-truncation": (
        "he_normal truncation",
        "Keras's he_normal redraws beyond 2 sd of a normal whose sd is pre-divided by 0.8796; "
        "torch's kaiming_normal_ is a plain normal.",
        "truncnorm(-2, 2) * sqrt(2 / fan_in) / 0.8796",
        "N(0, sqrt(2 / fan_in))",
        "`Initializer.truncated`: `tf_impl/model.py` VarianceScaling truncated/untruncated, "
        "`torch_impl/model.py` make_initializer (trunc_normal_ with sd / 0.8796)."),
    "kernel-layout": (
        "Kernel layout",
        "Keras kernels are (in, out), nn.Linear weights (out, in): loading without transposing fails "
        "(non-square) or silently scrambles the network (reshape).",
        "`Dense.kernel` (in, out), `y = x @ W`",
        "`Linear.weight` (out, in), `y = x @ W.T`",
        "canonical layout (in, out): `torch_impl/model.py` get_weights/set_weights transpose at the boundary."),
    "sgd-momentum-lr-change": (
        "SGD momentum under a changing learning rate",
        "Keras keeps lr inside the velocity, PyTorch applies the current lr to the whole buffer: the "
        "same while lr is constant, different once it changes.",
        "`v = m v - lr g; w += v`",
        "`b = m b + g; w -= lr b`",
        "with a constant rate torch.optim.SGD computes the spec's updates (its buffer b reported as the canonical "
        "velocity -lr b, `torch_impl/optimizers.py`); a decaying `training.schedule` with momentum is refused "
        "by validation (`common/config.py`)."),
    "keras-float32-hyperparameters": (
        "Keras float32 hyperparameters in float64 runs",
        "Keras stores a Python-float learning rate in a floatx (float32) variable and casts Python-float "
        "hyperparameters through float32 (0.9 -> 0.8999999761581421); tf.nn.leaky_relu's slope is a float32 attribute.",
        "`learning_rate` variable float32; `ops.cast(0.9, float64)` via float32",
        "hyperparameters are Python floats used in the tensor's dtype",
        "`tf_impl/optimizers.py` make_optimizer passes np.float64 scalars (and a callable learning rate) in float64 runs; "
        "`tf_impl/model.py` activation_layer computes leaky ReLU as tf.where(x > 0, x, slope * x) with the slope in the "
        "run's dtype, since tf.nn.leaky_relu keeps it as a float32 attribute."),
    "conv-layout": (
        "Conv kernel layout and the flatten order",
        "Keras keeps images NHWC and conv kernels (kh, kw, in, out); PyTorch NCHW and (out, in, kh, kw). "
        "So a Flatten after a conv orders its outputs differently: the first dense layer's input rows "
        "(fc1's 9,216 in PyTorch's MNIST example) are permuted, not only transposed.",
        "`Conv2D.kernel` (kh, kw, in, out); `Flatten` of (h, w, c): index (h W + w) C + c",
        "`Conv2d.weight` (out, in, kh, kw); `flatten` of (c, h, w): index c H W + h W + w",
        "canonical weights in Keras's layouts; `torch_impl/stack.py` to_canonical/from_canonical permute conv "
        "kernels and put a dense kernel's rows (a batch norm's features, a dropout mask) in the flatten order."),
    "conv-init-defaults": (
        "Conv and dense initializer defaults",
        "Keras draws kernels glorot_uniform and starts biases at zero; PyTorch draws kernels "
        "kaiming_uniform(a=sqrt(5)) (uniform within 1 / sqrt(fan_in)) and biases uniformly within the same bound.",
        "`kernel_initializer='glorot_uniform'`, `bias_initializer='zeros'`",
        "`kaiming_uniform_(w, a=sqrt(5))`, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
        "each layer's `kernel_init` and `bias_init` in the spec; the torch_mnist preset writes PyTorch's out "
        "(uniform bounds per layer), keras_convnet keeps Keras's."),
    "lr-schedule-unit": (
        "Learning-rate schedules count steps or epochs",
        "PyTorch's StepLR is stepped by the training loop, once an epoch in the MNIST example; Keras's "
        "schedules are functions of the optimizer's step count. StepLR(step_size=1) ported as "
        "ExponentialDecay(decay_steps=1) decays after every batch.",
        "`ExponentialDecay(lr, decay_steps, rate, staircase=True)(iterations)`",
        "`StepLR(optimizer, step_size, gamma)`, `scheduler.step()` after each epoch",
        "`training.schedule` (step_epochs, gamma) per epoch: `torch_impl/optimizers.py` use_schedule builds "
        "StepLR; `tf_impl/optimizers.py` use_schedule sets decay_steps = step_epochs x the epoch's steps."),
    "nll-log-softmax": (
        "log_softmax + NLL vs softmax + cross-entropy",
        "PyTorch's MNIST example ends in log_softmax and takes F.nll_loss; Keras's ends in softmax and "
        "categorical cross-entropy. The same function of the logits; only where the log is taken differs.",
        "`Dense(10, activation='softmax')`, `loss='categorical_crossentropy'`",
        "`F.log_softmax(x, dim=1)`, `F.nll_loss(output, target)`",
        "`loss.name = 'nll'` with a log_softmax output (torch_mnist): `torch_impl/losses.py` calls F.nll_loss; "
        "`tf_impl/losses.py` -sum t log p (Keras has no NLL loss)."),
}
IDS = tuple(ENTRIES)

# id -> the spec fields (dotted) whose value the entry explains: for a framework default, the
# fields of its rows in common.defaults' table; for the other differences (formulas, layouts,
# checks), listed here
OTHER_FIELDS: dict[str, tuple[str, ...]] = {
    "bn-batch-size-1": ("training.batch_size",),
    "cce-clipping": ("loss.formula", "loss.epsilon"),
    "bce-clipping": ("loss.formula", "loss.epsilon"),
    "adagrad-epsilon-placement": ("optimizer.epsilon_placement", "optimizer.epsilon"),
    "kernel-layout": (),
    "sgd-momentum-lr-change": ("optimizer.learning_rate", "training.schedule.gamma"),
    "keras-float32-hyperparameters": ("training.dtype",),
    "conv-layout": (),
    "conv-init-defaults": ("network.layers",),
    "lr-schedule-unit": ("training.schedule.step_epochs", "training.schedule.gamma"),
    "nll-log-softmax": ("loss.name", "network.output_activation"),
}
FIELDS: dict[str, tuple[str, ...]] = {i: tuple(dict.fromkeys(fields_of(i) + OTHER_FIELDS.get(i, ()))) for i in IDS}


def entries_for(fields: list[str], optimizer: str | None = None) -> list[str]:
    """The ids of the entries that explain a difference in these dotted spec fields (an
    optimizer-specific entry only for that optimizer, when `optimizer` is given)."""
    out = []
    for entry, names in FIELDS.items():
        owner = entry.split("-")[0]
        if optimizer and owner in ("adam", "rmsprop", "adagrad", "sgd", "adadelta") and owner != optimizer:
            continue
        if any(f in names for f in fields):
            out.append(entry)
    return out
