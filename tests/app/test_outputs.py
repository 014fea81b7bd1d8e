"""One rule for every file a command writes: a file that exists is never replaced without
--overwrite, and --resume is offered only where the command can resume (train's --json and
--save). Each output option of each subcommand, refused before anything runs, the file left as
it was; and every option a command's help names is one its parser has."""
from __future__ import annotations

import re

import pytest

from twinbench.cli import main, parser

# (subcommand arguments, the output option, whether --resume is offered); {out} is the existing file
CASES = [
    (["train", "--framework", "torch", "--json", "{out}"], "--json", True),
    (["train", "--framework", "torch", "--save", "{out}"], "--save", True),
    (["train", "--framework", "torch", "--plot", "{out}"], "--plot", False),
    (["compare", "--json", "{out}"], "--json", False),
    (["compare", "--plot", "{out}"], "--plot", False),
    (["evaluate", "--framework", "torch", "--weights", "w.npz", "--json", "{out}"], "--json", False),
    (["diff", "tf:conf5", "torch:conf5", "--json", "{out}"], "--json", False),
    (["diff", "tf:conf5", "torch:conf5", "--png", "{out}"], "--png", False),
    (["diff", "tf:conf5", "torch:conf5", "--html", "{out}"], "--html", False),
    (["side-by-side", "--html", "{out}"], "--html", False),
]


@pytest.mark.parametrize("args, option, resumable", CASES, ids=[f"{c[0][0]}-{c[1]}" for c in CASES])
def test_an_existing_output_is_not_replaced_without_overwrite(args, option, resumable, tmp_path, capsys):
    out = tmp_path / "existing"
    out.write_text("an earlier result")
    stamp = out.stat().st_mtime_ns
    assert main([a.format(out=out) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    hint = "add --resume to continue that run or --overwrite to replace it" if resumable \
        else "add --overwrite to replace it"
    assert err == f"twinbench: error: {option} {out} exists: {hint}", err
    assert out.read_text() == "an earlier result" and out.stat().st_mtime_ns == stamp


def test_side_by_side_replaces_its_page_with_overwrite(tmp_path, capsys):
    out = tmp_path / "page.html"
    out.write_text("old")
    assert main(["side-by-side", "train_step", "--html", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_bench_refuses_a_folder_of_results(tmp_path, capsys):
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "floor-conf1-cpu.json").write_text("{}")
    assert main(["bench", "--quick", "--only", "floor-conf1", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"twinbench bench: error: {tmp_path} holds results: add --resume to "
                                              "keep its finished rows, or --overwrite to measure them again")


def _subcommands() -> dict:
    import bench.cli
    subs = next(a for a in parser()._actions if a.dest == "command").choices
    return {**{name: p for name, p in subs.items() if name != "bench"}, "bench": bench.cli.parser()}


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_names_only_options_that_exist(name: str):
    sub = _subcommands()[name]
    text = re.sub(r"`(train|compare|bench|diff) [^`]*`", "", sub.format_help())  # another command's, quoted as such
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    exists = {o for action in sub._actions for o in action.option_strings}
    assert named <= exists, f"twinbench {name} --help names {sorted(named - exists)}, which it does not have"


def test_every_command_has_one_variant_default():
    defaults = {name: next(a.default for a in p._actions if a.dest == "variant")
                for name, p in _subcommands().items() if any(a.dest == "variant" for a in p._actions)}
    assert set(defaults) >= {"train", "compare", "experiment"} and set(defaults.values()) == {"fast"}, defaults

