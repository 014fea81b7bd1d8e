"""The mirror check: tf_impl/ and torch_impl/ keep the same files, public functions,
sections and `__all__`, in the same order (pure `ast` and text; no framework import).
A private module (`_name.py`) may stand on one side only: plumbing for one framework
that has no counterpart in the other (torch_impl/_step.py, _graphs.py, _tuned/)."""
from __future__ import annotations

import ast
from pathlib import Path

from reader.sections import LEFT, RIGHT, Section, file_key, split_sections


def _public_functions(tree: ast.Module) -> list[tuple[str, int]]:
    return [(n.name, n.lineno) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]


def _dunder_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:
                return [f"<not a literal: {ast.unparse(node.value)}>"]
    return None


def _section_at(sections: list[Section], lineno: int) -> str:
    return next((s.name for s in reversed(sections) if s.lines and s.lines[0][0] <= lineno), "header")


def _order_problem(what: str, a: list[str], b: list[str]) -> str | None:
    """A message naming the first place where the common items of a and b differ in order."""
    common = set(a) & set(b)
    a, b = [x for x in a if x in common], [x for x in b if x in common]
    for x, y in zip(a, b):
        if x != y:
            return f"{what} in a different order: {LEFT} has {x!r} where {RIGHT} has {y!r} " \
                   f"({LEFT}: {', '.join(a)}; {RIGHT}: {', '.join(b)})"
    return None


def _only(what: str, a: list[str], b: list[str]) -> list[str]:
    return [f"{what} {x!r} only in {side}" for side, xs, ys in ((LEFT, a, b), (RIGHT, b, a))
            for x in xs if x not in ys]


def _file_problems(name: str, tf_path: Path, pt_path: Path) -> list[str]:
    trees, sections = [], []
    for path in (tf_path, pt_path):
        try:
            trees.append(ast.parse(path.read_text(), str(path)))
        except SyntaxError as exc:
            return [f"{name}: cannot parse {path.parent.name}/{name}: {exc}"]
        sections.append([s for s in split_sections(path) if s.name != "header"])
    out = []
    funcs = [_public_functions(t) for t in trees]
    names = [[f for f, _ in fs] for fs in funcs]
    out += _only("public function", *names)
    out.append(_order_problem("public functions", *names))
    snames = [[s.name for s in ss] for ss in sections]
    out += _only("section", *snames)
    out.append(_order_problem("sections", *snames))
    where = [{f: _section_at(ss, line) for f, line in fs} for fs, ss in zip(funcs, sections)]
    out += [f"public function {f!r} is in section {where[0][f]!r} in {LEFT} but {where[1][f]!r} in {RIGHT}"
            for f in names[0] if f in where[1] and where[0][f] != where[1][f]]
    alls = [_dunder_all(t) for t in trees]
    if alls[0] != alls[1]:
        out.append(f"__all__ differs: {LEFT} {alls[0]} vs {RIGHT} {alls[1]}")
    return [f"{name}: {p}" for p in out if p]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def mirror_problems(tf_dir: Path | str, torch_dir: Path | str) -> list[str]:
    """Where the two packages stop mirroring each other (empty when they mirror)."""
    tf_dir, torch_dir = Path(tf_dir), Path(torch_dir)
    tf_files, pt_files = ({p.name for p in d.glob("*.py")} for d in (tf_dir, torch_dir))
    problems = [f"{n}: file only in {side}" for side, xs, ys in
                ((LEFT, tf_files, pt_files), (RIGHT, pt_files, tf_files)) for n in sorted(xs - ys) if not _private(n)]
    for name in sorted(tf_files & pt_files, key=file_key):
        problems += _file_problems(name, tf_dir / name, torch_dir / name)
    return problems
