"""Rendering a report page in headless Debian Chromium, shared by the design and fleet report tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

# any script error or console error rewrites the title, which the dumped DOM then shows
_TRAP = ("<script>window.addEventListener('error', e => { document.title = 'SCRIPT-ERROR: ' + e.message; });"
         "console.error = (...a) => { document.title = 'SCRIPT-ERROR: console: ' + a.join(' '); };</script>")


@pytest.fixture
def rendered(tmp_path: Path) -> Callable[[str, Iterable[str]], str]:
    """Open `html` in headless Chromium, fail on a script or console error or on a plot section that drew nothing, and
    return the DOM after the scripts ran. Skips where Chromium is not installed (`make test` installs it)."""
    if shutil.which("chromium") is None:
        pytest.skip("Debian chromium not installed (make test installs it)")

    def render(html: str, plots: Iterable[str]) -> str:
        page = tmp_path / "page.html"
        page.write_text(html.replace("<head>", "<head>" + _TRAP, 1))
        cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        title = re.search(r"<title>(.*?)</title>", dom)
        assert title and "SCRIPT-ERROR" not in title.group(1), title
        for name in plots:
            block = dom.split(f'id="plot-{name}"', 1)
            assert len(block) == 2, name
            assert 'class="main-svg"' in block[1].split("</section>", 1)[0], f"{name} did not render"
        return dom
    return render
