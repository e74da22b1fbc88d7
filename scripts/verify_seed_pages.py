"""Check that the committed doc-page source tables still match the saved documentation pages.

Usage: python scripts/verify_seed_pages.py [PAGES_DIR] [--sources DIR] [--write]

Re-parses every ``*.txt`` page in PAGES_DIR (default: ``../shared/seeds`` next to the repository) and compares
it with ``schemas/sources/<model with / as __>@docs-<page stem>.json``. Exit 0 when all match, 1 when any
differs or is missing (the difference is printed), 2 when the pages directory does not exist. ``--write``
(re)writes the tables instead: use it once, then check every row by hand against the page.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mock_server.contract.docpages import PageParseError, parse_page_file  # noqa: E402
from mock_server.contract.tables import EndpointTable  # noqa: E402


def table_path(sources: Path, table: EndpointTable) -> Path:
    return sources / f"{table.model.replace('/', '__')}@{table.version}.json"


def check_page(page: Path, sources: Path, write: bool) -> list[str]:
    """Problems with one page (empty when its committed table matches)."""
    try:
        table = parse_page_file(page)
    except (PageParseError, OSError, UnicodeDecodeError) as exc:
        return [f"{page.name}: cannot parse: {exc}"]
    target = table_path(sources, table)
    fresh = table.dumps()
    if write:
        target.write_text(fresh, encoding="utf-8")
        return []
    if not target.exists():
        return [f"{page.name}: no committed table {target}"]
    committed = target.read_text(encoding="utf-8")
    if committed == fresh:
        return []
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True), fresh.splitlines(keepends=True), str(target), f"{page.name} (re-parsed)"
    )
    return [f"{page.name}: differs from {target.name}\n" + "".join(diff)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="?", type=Path, default=REPO.parent / "shared" / "seeds")
    parser.add_argument("--sources", type=Path, default=REPO / "schemas" / "sources")
    parser.add_argument("--write", action="store_true", help="write the tables instead of checking them")
    args = parser.parse_args(argv)
    if not args.pages.is_dir():
        sys.stderr.write(f"verify_seed_pages: no pages directory {args.pages}\n")
        return 2
    pages = sorted(args.pages.glob("*.txt"))
    problems = [p for page in pages for p in check_page(page, args.sources, args.write)]
    for problem in problems:
        sys.stdout.write(problem.rstrip("\n") + "\n")
    verb = "wrote" if args.write else "checked"
    sys.stdout.write(f"{verb} {len(pages)} pages, {len(problems)} problems\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
