"""Headless Chromium for the tests of the HTML pages (skipped, with the reason, without one)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser's path; skips the calling test when there is none."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not installed")
    return browser


def _base(profile: Path) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]


def screenshot(page: Path, shot: Path, size: str = "1600,1200") -> Path:
    """The page rendered to a PNG."""
    subprocess.run([*_base(shot.parent / "profile"), f"--screenshot={shot}", f"--window-size={size}", page.as_uri()],
                   capture_output=True, timeout=120)
    return shot


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the browser loaded the page."""
    return subprocess.run([*_base(profile), "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120).stdout


def png_colours(path: Path) -> int:
    """How many different colours a sample of the PNG's pixels has (a blank page has 1)."""
    import matplotlib.image
    image = matplotlib.image.imread(path)
    return len({tuple(px) for px in image[::7, ::7].reshape(-1, image.shape[-1]).tolist()})
