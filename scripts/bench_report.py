"""Benchmark a run's report.html in headless Chromium: its size, first paint, load and ready times.

Opens RUN_DIR/report.html from file:// in headless Chromium (the browser tests' harness,
``tests/browser.py``, with the browser cache off) ``--repeats`` times, each a fresh page load, and
reports:

- the bytes of everything the page loads, by kind: the page (report.html), ``points.js``, the thumbnail
  sprite pages and the concept grids, read from the page's own inline data (``window.RDX_REPORT``);
- first-contentful-paint (ms after navigation start), median and max;
- the load event's end (ms), median and max;
- ready: ``points.js`` parsed and the maps drawn (the page's ``rdx-ready`` performance mark; for a page
  written before that mark existed, the first time ``window.rdxReport.ready`` was seen, polled);
- the console errors and network requests of all loads (both should be empty).

Usage (from the repository root)::

    .venv/bin/python scripts/bench_report.py outputs/mnist_835/<run>            # a table
    .venv/bin/python scripts/bench_report.py RUN_DIR --repeats 5 --json out.json --screenshot map.png

``--json -`` prints the JSON instead of the table. ``--screenshot`` writes a PNG of the last load once
ready: the element ``--screenshot-of`` (a CSS selector, default ``#map``) scrolled into view, or the whole
page with ``--screenshot-of page``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the harness lives with the browser tests
    sys.path.insert(0, str(REPO))

from tests.browser import Browser, find_binaries, missing_reason  # noqa: E402

REPORT_FILE = "report.html"
READY_MARK = "rdx-ready"
READY_JS = "window.rdxReport && window.rdxReport.ready"
KINDS = ("page", "points", "thumbnails", "grids")
INLINE_DATA = re.compile(r"window\.RDX_REPORT = (\{.*?\});\n</script>", re.DOTALL)


def report_files(run_dir: str | Path) -> dict[str, list[Path]]:
    """The files report.html loads, by kind ("page", "points", "thumbnails", "grids"), from its inline
    data: the page itself, ``points_file`` (absent in a single-file page), the sprite pages and every
    concept's ``grid_file``. Data URIs (a single-file page) are inside the page and not listed again."""
    run_dir = Path(run_dir)
    page = run_dir / REPORT_FILE
    match = INLINE_DATA.search(page.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{page} has no inline report data (window.RDX_REPORT); is it an rdx report?")
    data = json.loads(match.group(1))

    def local(names: list[str | None]) -> list[Path]:
        return [run_dir / name for name in dict.fromkeys(names) if name and not name.startswith("data:")]

    grids = [c.get("grid_file") for method in data["methods"] for c in method["concepts"]]
    return {
        "page": [page],
        "points": local([data.get("points_file")]),
        "thumbnails": local(list(data["thumbs"]["pages"])),
        "grids": local(grids),
    }


def sizes(files: dict[str, list[Path]]) -> dict[str, int]:
    """Bytes per kind and in total ("total"); a listed file that is missing raises FileNotFoundError."""
    by_kind = {kind: sum(path.stat().st_size for path in paths) for kind, paths in files.items()}
    return by_kind | {"total": sum(by_kind.values())}


def _ready_ms(browser: Browser, timeout: float) -> tuple[float, bool]:
    """(ms from navigation start until the page was ready, whether it was polled rather than marked)."""
    browser.wait_for(READY_JS, timeout=timeout)
    mark = browser.execute(
        "const m = performance.getEntriesByName(arguments[0], 'mark');"
        "return m.length ? m[0].startTime : null;",
        READY_MARK,
    )
    if mark is not None:
        return float(mark), False
    return float(browser.execute("return performance.now()")), True


def load_once(browser: Browser, page: Path, timeout: float) -> dict[str, Any]:
    """One fresh load of ``page``: first paint, load end and ready in ms, errors and requests."""
    browser.open(page)
    first_paint = browser.first_paint_ms(timeout=timeout)
    load = browser.load_ms()
    ready, polled = _ready_ms(browser, timeout)
    return {
        "first_paint_ms": first_paint,
        "load_ms": load,
        "ready_ms": ready,
        "ready_polled": polled,
        "console_errors": browser.console_errors(),
        "network_requests": browser.network_requests(),
    }


def _summary(values: list[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present or len(present) < len(values):  # a load that never painted has no fair median
        return {"median": None, "max": None}
    return {"median": statistics.median(present), "max": max(present)}


def machine() -> dict[str, Any]:
    """CPU model, core count and load average: the context of the timings."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": load}


def bench(
    run_dir: str | Path,
    repeats: int = 5,
    timeout: float = 60.0,
    screenshot: str | Path | None = None,
    screenshot_of: str = "#map",
    browser: Browser | None = None,
) -> dict[str, Any]:
    """Measure RUN_DIR/report.html ``repeats`` times (see the module docstring); the results as a dict.

    ``browser``: an already started harness browser (the tests pass theirs); None starts one and quits
    it afterwards.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    run_dir = Path(run_dir)
    files = report_files(run_dir)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "bytes": sizes(files),
        "files": {kind: len(paths) for kind, paths in files.items()},
        "machine": machine(),
    }
    own = browser is None
    if own:
        reason = missing_reason()
        if reason:
            raise SystemExit(f"cannot start headless Chromium: {reason}")
        browser = Browser.start(*find_binaries())
    try:
        result["chromium"] = browser.driver.capabilities.get("browserVersion")
        # every load fetches every file again, as a first visit would
        browser.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        loads = [load_once(browser, run_dir / REPORT_FILE, timeout) for _ in range(repeats)]
        if screenshot is not None:
            if screenshot_of == "page":
                browser.screenshot(screenshot, full_page=True)
            else:
                element = browser.find(screenshot_of)
                browser.execute("arguments[0].scrollIntoView({block: 'start'})", element)
                time.sleep(0.2)  # a frame to lay out and draw after the scroll
                element.screenshot(str(screenshot))
            result["screenshot"] = str(screenshot)
    finally:
        if own:
            browser.quit()
    result["loads"] = loads
    for key in ("first_paint_ms", "load_ms", "ready_ms"):
        result[key] = _summary([load[key] for load in loads])
    result["ready_polled"] = any(load["ready_polled"] for load in loads)
    result["console_errors"] = sorted({e for load in loads for e in load["console_errors"]})
    result["network_requests"] = sorted({r for load in loads for r in load["network_requests"]})
    return result


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def table(result: dict[str, Any]) -> str:
    """The result as a short plain-text table."""
    mb = 1024**2
    count = result["files"]
    lines = [f"report: {result['run_dir']}/{REPORT_FILE}"]
    for kind in KINDS:
        lines.append(f"  {kind:<11} {count[kind]:>4} file(s) {result['bytes'][kind] / mb:>9.2f} MB")
    lines.append(f"  {'total':<11} {sum(count.values()):>4} file(s) {result['bytes']['total'] / mb:>9.2f} MB")
    n = len(result["loads"])
    lines.append(f"timings over {n} load(s), ms after navigation start: median / max")
    polled = " (polled: the page has no rdx-ready mark)" if result["ready_polled"] else ""
    for key, title in (("first_paint_ms", "first paint"), ("load_ms", "load event"), ("ready_ms", "ready")):
        summary = result[key]
        lines.append(
            f"  {title:<11} {_ms(summary['median']):>9} / {_ms(summary['max'])}"
            + (polled if key == "ready_ms" else "")
        )
    errors, requests = result["console_errors"], result["network_requests"]
    lines.append(f"console errors: {len(errors)}; network requests: {len(requests)}")
    lines += [f"  error: {e}" for e in errors] + [f"  request: {r}" for r in requests]
    info = result["machine"]
    load = ", ".join(f"{value:.2f}" for value in info["load_average"] or ())
    lines.append(f"Chromium {result['chromium']}; {info['cpu']}, {info['cores']} cores, load average {load}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run dir with report.html")
    parser.add_argument("--repeats", type=int, default=5, help="fresh page loads (default 5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for paint and ready")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here ('-': print them)")
    parser.add_argument("--screenshot", metavar="PATH", help="a PNG of the last load once ready")
    parser.add_argument(
        "--screenshot-of", default="#map", help="CSS selector of the element to shoot, or 'page' (whole page)"
    )
    args = parser.parse_args(argv)
    result = bench(args.run_dir, args.repeats, args.timeout, args.screenshot, args.screenshot_of)
    text = json.dumps(result, indent=2)
    if args.json == "-":
        print(text)
    else:
        if args.json:
            Path(args.json).write_text(text + "\n")
        print(table(result))
    return result


if __name__ == "__main__":
    main()
