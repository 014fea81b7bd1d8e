"""Headless Chromium for the tests of the HTML pages (skipped, with the reason, without one)."""
from __future__ import annotations

import html
import json
import re
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


# Appended to a copy of a page: after loading, every element whose box reaches past the right
# edge of the viewport or that scrolls sideways inside itself (a user must scroll to read it),
# every block split across columns, and the document's scroll width, written into the DOM
# for --dump-dom to return.
_MEASURE = """<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    const scrolls = el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1
                    && getComputedStyle(el).overflowX !== "visible";
    // over a neighbour (a column, a flex item); preformatted text is left out, as its trailing
    // spaces hang past the line's end by design
    const sticksOut = box.right > el.parentElement.getBoundingClientRect().right + 1
                      && !getComputedStyle(el).whiteSpace.startsWith("pre");
    if (box.width > 0 && (box.right > width + 1 || scrolls || sticksOut))
      wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ? "." + el.className : ""}`
                + ` "${el.textContent.trim().slice(0, 30)}" right ${Math.round(box.right)}`
                + ` scroll ${el.scrollWidth}/${el.clientWidth}`);
  }
  // a block broken across columns (or pages) has one client rect per fragment
  const split = [...document.body.querySelectorAll("*")]
    .filter(el => getComputedStyle(el).display !== "inline" && el.getClientRects().length > 1)
    .map(el => `${el.tagName.toLowerCase()}: ${el.textContent.trim().slice(0, 40)}`);
  const out = document.createElement("pre");
  out.id = "overflow-measure";
  out.textContent = JSON.stringify({viewport: width, scroll_width: document.documentElement.scrollWidth, wide,
                                    split});
  document.body.appendChild(out);
});
</script>"""


def overflow(page: Path, workdir: Path, width: int = 1400) -> dict:
    """The page rendered `width` px wide: {"viewport", "scroll_width", "wide": the elements that
    reach past the right edge, stick out of their parent or scroll sideways (tag#id.class, the
    start of their text, right edge, scroll and client width), "split": the blocks broken
    across columns (tag: the start of their text)}."""
    probe = workdir / f"measured-{page.name}"
    probe.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    dom = subprocess.run([*_base(workdir / "profile-measure"), f"--window-size={width},1000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="overflow-measure">(.*?)</pre>', dom, re.S)
    assert found, f"the measuring script did not run: {dom[-500:]!r}"
    return json.loads(html.unescape(found[1]))
