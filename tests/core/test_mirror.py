"""tf_impl/ and torch_impl/ mirror each other: same files, public functions, sections, __all__.

Pure `ast`/text checks (`reader.mirror.mirror_problems`); TF and torch are never imported.
The tests on temporary copies prove that the checker names each kind of break.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from reader.mirror import mirror_problems
from reader.sections import MARKER

ROOT = Path(__file__).resolve().parents[2]


def test_tf_impl_and_torch_impl_mirror():
    problems = mirror_problems(ROOT / "tf_impl", ROOT / "torch_impl")
    assert not problems, "tf_impl and torch_impl do not mirror:\n  " + "\n  ".join(problems)


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Copies of both packages (the .py files) and the problems they start with."""
    dirs = []
    for side in ("tf_impl", "torch_impl"):
        (tmp_path / side).mkdir()
        for path in (ROOT / side).glob("*.py"):
            shutil.copy(path, tmp_path / side / path.name)
        dirs.append(tmp_path / side)
    return dirs[0], dirs[1], mirror_problems(*dirs)


def _new_problems(tf_dir: Path, pt_dir: Path, before: list[str]) -> list[str]:
    return [p for p in mirror_problems(tf_dir, pt_dir) if p not in before]


def _remove_function(path: Path, name: str) -> None:
    """Delete `def name` (through the line before the next top-level statement or marker)."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n", ")")),
               len(lines))
    path.write_text("".join(lines[:start] + lines[end:]))


def _swap_sections(path: Path, first: str, second: str) -> None:
    """Swap two sections (marker and body) in place."""
    parts = re.split(r"(?m)^(?=# --- section: )", path.read_text())
    heads = [MARKER.match(p.splitlines()[0]) if p else None for p in parts]
    index = {head["name"]: i for i, head in enumerate(heads) if head}
    i, j = index[first], index[second]
    parts[i], parts[j] = parts[j], parts[i]
    path.write_text("".join(parts))


def test_catches_a_function_removed_from_one_side(copies):
    tf_dir, pt_dir, before = copies
    _remove_function(pt_dir / "training.py", "evaluate")
    new = _new_problems(tf_dir, pt_dir, before)
    assert "training.py: public function 'evaluate' only in tf_impl" in new, new


def test_catches_two_sections_swapped(copies):
    tf_dir, pt_dir, before = copies
    _swap_sections(tf_dir / "training.py", "train_step", "evaluate")
    new = "\n".join(_new_problems(tf_dir, pt_dir, before))
    assert "training.py: sections in a different order: tf_impl has 'evaluate' where torch_impl has " \
           "'train_step'" in new, new
    assert "training.py: public functions in a different order" in new, new


def test_catches_a_file_on_one_side(copies):
    tf_dir, pt_dir, before = copies
    (pt_dir / "losses.py").unlink()
    assert "losses.py: file only in tf_impl" in _new_problems(tf_dir, pt_dir, before)


def test_a_private_module_may_stand_on_one_side(copies):
    tf_dir, pt_dir, before = copies
    (pt_dir / "_plumbing.py").write_text("def helper(): pass\n")
    (tf_dir / "__main__.py").write_text("")
    assert _new_problems(tf_dir, pt_dir, before) == ["__main__.py: file only in tf_impl"]


def test_catches_a_different_all(copies):
    tf_dir, pt_dir, before = copies
    init = pt_dir / "__init__.py"
    init.write_text(init.read_text().replace('"fit", ', ""))
    new = _new_problems(tf_dir, pt_dir, before)
    assert any(p.startswith("__init__.py: __all__ differs") for p in new), new


def test_catches_a_section_renamed_and_a_function_moved(tmp_path: Path):
    a, b = tmp_path / "tf_impl", tmp_path / "torch_impl"
    a.mkdir(), b.mkdir()
    (a / "m.py").write_text("# --- section: one ---\ndef f(): pass\n\ndef g(): pass\n"
                            "# --- section: two ---\ndef _private(): pass\n")
    (b / "m.py").write_text("# --- section: one ---\ndef f(): pass\n# --- section: deux ---\n"
                            "def g(): pass\n")
    problems = mirror_problems(a, b)
    assert "m.py: section 'two' only in tf_impl" in problems
    assert "m.py: section 'deux' only in torch_impl" in problems
    assert "m.py: public function 'g' is in section 'one' in tf_impl but 'deux' in torch_impl" in problems
    assert not any("_private" in p for p in problems)


def test_private_names_and_classes_may_differ(tmp_path: Path):
    a, b = tmp_path / "tf_impl", tmp_path / "torch_impl"
    a.mkdir(), b.mkdir()
    (a / "m.py").write_text("class PaperAdam: pass\ndef _helper(): pass\ndef f(): pass\n")
    (b / "m.py").write_text("class KerasAdam: pass\ndef f(): pass\n")
    assert mirror_problems(a, b) == []
