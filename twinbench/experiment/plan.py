"""Which runs an experiment makes: arms x specs x frameworks x seeds (x folds), each a task.

Arms:
  mapped    the spec as written, in every framework (what twinbench's mapping gives);
  defaults  each framework with its own defaults where the catalogue says they differ
            (frameworks' own_defaults: what a port written without twinbench gets); a run
            whose defaults spec equals the mapped one is not repeated;
  kfold     k-fold cross-validation of each spec (--k-folds K): validation accuracy per fold.
Seed s fixes both the canonical initial weights and the shuffle order, the same in every
framework.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import frameworks
from common.config import SpecError, load_spec, spec_to_dict
from common.spec import Spec

DEFAULT_SPECS = ("conf1", "conf2", "conf3", "conf4", "conf5")
ARMS = ("mapped", "defaults", "kfold")


@dataclass(frozen=True)
class Task:
    """One training run (everything a worker needs, picklable)."""

    arm: str
    label: str          # the spec's name as given (preset or file stem)
    framework: str
    seed: int
    spec: Spec          # resolved: seed, epochs and (defaults arm) the framework's defaults applied
    variant: str
    fold: int | None = None
    train_examples: int | None = None

    @property
    def key(self) -> str:
        fold = "" if self.fold is None else f"-f{self.fold}"
        return f"{self.arm}-{self.label}-{self.framework}-{self.variant}-s{self.seed}{fold}"

    def settings(self) -> dict:
        """What a stored run must have been made with to count for --resume."""
        return {"spec": spec_to_dict(self.spec), "variant": self.variant, "fold": self.fold,
                "train_examples": self.train_examples}


def load_specs(names: list[str]) -> dict[str, Spec]:
    """label -> spec for every name or TOML path; SpecError for the first bad one."""
    out = {}
    for name in names:
        spec = load_spec(name)
        label = spec.name
        if label in out:
            raise SpecError(f"{name}: two specs are named {label!r}; give them different names")
        out[label] = spec
    return out


def with_run(spec: Spec, seed: int, epochs: int | None, k_folds: int = 0) -> Spec:
    t = dataclasses.replace(spec.training, seed=seed, epochs=epochs or spec.training.epochs, k_folds=k_folds)
    return dataclasses.replace(spec, training=t)


def plan(specs: dict[str, Spec], fws: list[str], seeds: list[int], arms: list[str], variant: str,
         epochs: int | None = None, k_folds: int = 0, train_examples: int | None = None) -> list[Task]:
    """Every task of the experiment, in a stable order (quick specs are not favoured)."""
    tasks = []
    for label, base in specs.items():
        for fw in fws:
            for seed in seeds:
                spec = with_run(base, seed, epochs)
                if "mapped" in arms:
                    tasks.append(Task("mapped", label, fw, seed, spec, variant, train_examples=train_examples))
                own = frameworks.get(fw).own_defaults(spec)
                if "defaults" in arms and own != spec:
                    tasks.append(Task("defaults", label, fw, seed, own, variant, train_examples=train_examples))
                if "kfold" in arms and k_folds:
                    folded = with_run(base, seed, epochs, k_folds)
                    tasks += [Task("kfold", label, fw, seed, folded, variant, fold, train_examples)
                              for fold in range(k_folds)]
    return tasks


def check_arguments(seeds: int, fws: list[str], arms: list[str], k_folds: int, epochs: int | None,
                    train_examples: int | None) -> None:
    """SpecError naming the first bad argument (before anything runs)."""
    if seeds < 1:
        raise SpecError(f"--seeds: expected at least 1 seed, got {seeds}")
    for fw in fws:
        frameworks.get(fw)
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise SpecError(f"--arms: unknown arm {bad[0]!r}; choose from {', '.join(ARMS)}")
    if "kfold" in arms and k_folds < 2:
        raise SpecError(f"--k-folds: the kfold arm needs at least 2 folds, got {k_folds}")
    if epochs is not None and epochs < 1:
        raise SpecError(f"--epochs: expected at least 1, got {epochs}")
    if train_examples is not None and not 1 <= train_examples <= 60_000:
        raise SpecError(f"--train-examples: expected 1..60000, got {train_examples}")
