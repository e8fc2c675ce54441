"""Screenshots of report.html and compare.html for the README (docs/report.png, docs/compare.png).

Two runs of the tiny space first, all precisions and int4 only (about 4 minutes on 2 cores):

    .venv/bin/autotune --out runs/tiny
    .venv/bin/autotune --space docs/tiny-int4.yaml --out runs/tiny-int4
    .venv/bin/python docs/make_screenshots.py runs/tiny runs/tiny-int4

It writes the report of the first run and the comparison of both (into runs/compare), then opens
each page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright) and saves a
full-page screenshot. Needs `pip install -e ".[test]"` (playwright) and chromium.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(page_file: Path, png: Path, chromium: str, width: int = 1280) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(page_file.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    print(f"written: {png}")


def autotune(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "autotune", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--compare-out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    autotune("report", str(args.run_a))
    autotune("compare", str(args.run_a), str(args.run_b), "--out", str(args.compare_out))
    screenshot(args.run_a / "report.html", DOCS / "report.png", args.chromium)
    screenshot(args.compare_out / "compare.html", DOCS / "compare.png", args.chromium)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
