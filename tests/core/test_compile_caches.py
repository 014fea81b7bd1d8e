"""Compiled code is cached by what makes it valid: the C floor by what -march=native means to
the compiler on this CPU and the compiler's version, inductor's folder and the tuned tier's saved
loops by the CPU's flags (common.environment.cpu_key), not by its name: two machines that both
say "AMD EPYC", one with AVX-512 and one without, may share a home directory (CI's compile
cache, a Dask cluster), and code built for one crashes the other (SIGILL)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import environment

ROOT = Path(__file__).resolve().parents[2]
ZEN4 = {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "stepping": "1", "model name": "AMD EPYC",
        "flags": "fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl"}
ROME = {**ZEN4, "cpu family": "23", "model": "49", "flags": "fpu sse sse2 avx avx2 fma"}


@pytest.fixture
def cfloor(tmp_path, monkeypatch):
    pytest.importorskip("cffi")
    from bench import cfloor
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    monkeypatch.setattr(cfloor, "_LOADED", {})
    return cfloor


def _as_if(monkeypatch, cpuinfo: dict) -> str:
    """cpu_key on a machine whose /proc/cpuinfo says `cpuinfo`."""
    monkeypatch.setattr(environment, "_cpuinfo", lambda: dict(cpuinfo))
    environment.cpu_key.cache_clear()
    environment.cpu_info.cache_clear()
    try:
        return environment.cpu_key()
    finally:
        environment.cpu_key.cache_clear()
        environment.cpu_info.cache_clear()


def test_cpus_of_one_name_with_other_flags_have_other_keys(monkeypatch):
    zen4, rome = _as_if(monkeypatch, ZEN4), _as_if(monkeypatch, ROME)
    assert zen4 != rome
    assert _as_if(monkeypatch, {**ZEN4, "flags": ZEN4["flags"].replace(" avx512vl", "")}) != zen4
    assert _as_if(monkeypatch, dict(ZEN4)) == zen4  # deterministic


def test_cpu_info_names_family_model_and_simd(monkeypatch):
    monkeypatch.setattr(environment, "_cpuinfo", lambda: dict(ROME))
    environment.cpu_info.cache_clear()
    try:
        info = environment.cpu_info()
        assert (info["vendor"], info["family"], info["model"], info["stepping"]) == ("AuthenticAMD", 23, 49, 1)
        assert info["simd"] == ["avx", "avx2", "fma", "sse", "sse2"] and "avx512f" not in info["simd"]
        assert "family 23 model 49" in environment.cpu_line(info) and "avx2" in environment.cpu_line(info)
    finally:
        environment.cpu_info.cache_clear()


def test_a_c_floor_built_for_other_flags_is_not_loaded(cfloor, monkeypatch):
    """An entry another machine built (another -march=native) lies in the cache: this machine builds its own."""
    real = cfloor.native_target()
    monkeypatch.setattr(cfloor, "native_target", lambda: real.replace("-mavx512f", "-mno-avx512f") + "\nother CPU")
    cfloor.load("conf1")
    theirs = set(cfloor.cache_dir().glob("*.so"))
    assert len(theirs) == 1
    monkeypatch.setattr(cfloor, "native_target", lambda: real)
    monkeypatch.setattr(cfloor, "_LOADED", {})
    built = []
    real_build = cfloor._build
    monkeypatch.setattr(cfloor, "_build", lambda *a: built.append(a[1]) or real_build(*a))
    ffi, lib = cfloor.load("conf1")
    assert len(built) == 1 and not any(p.name.startswith(built[0]) for p in theirs)
    assert set(cfloor.cache_dir().glob("*.so")) - theirs  # its own entry, beside theirs
    monkeypatch.setattr(cfloor, "_LOADED", {})
    cfloor.load("conf1")  # and the next process loads it, building nothing
    assert len(built) == 1


def test_the_c_floor_key_holds_the_compilers_resolved_target(cfloor):
    target = cfloor.native_target()
    assert "-march=" in target and ("gcc" in target.splitlines()[0].lower() or "cc" in target.splitlines()[0])


def test_two_processes_building_the_same_key_both_succeed(tmp_path):
    pytest.importorskip("cffi")
    env = {**os.environ, "TWINBENCH_COMPILE_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    code = "from bench import cfloor; cfloor.load('conf1'); cfloor.load('conf5'); print('built')"
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-500:] for o in outs]
    assert all(o[0].strip() == "built" for o in outs)
    built = sorted(p.name for p in (tmp_path / "cfloor").iterdir())
    assert len([n for n in built if "conf1" in n]) == 1 and len([n for n in built if "conf5" in n]) == 1, built


def test_inductors_cache_folder_is_one_per_cpu(monkeypatch, tmp_path):
    import frameworks
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr(environment, "_cpuinfo", lambda: dict(ZEN4))
    environment.cpu_key.cache_clear()
    try:
        frameworks.get("torch").configure()
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor" / environment.cpu_key())
    finally:
        environment.cpu_key.cache_clear()
