"""rdx-cache: size, verify and clean the representation (feature) cache.

Examples:
    rdx-cache size
    rdx-cache --root /data/rdx/outputs/cache size
    rdx-cache verify
    rdx-cache verify --fix
    rdx-cache clean --older-than 30 --dry-run
    rdx-cache clean

``verify`` reads every entry and checks it as a run's load does (a readable .npy, its metadata, shape,
dtype and content digest), prints each bad entry with what is wrong and a summary, and exits with status 1
while bad entries remain; ``--fix`` removes them (runs compute them again). Entries written before the
cache stored digests count as bad: they cannot be checked.

The default folder is ``$RDX_ROOT/outputs/cache`` (``./outputs/cache`` without RDX_ROOT), the same as the
compare config's ``cache.dir``. Entries being computed by a running job are never removed.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from rdx.cache import FeatureCache, default_cache_root


def human_bytes(n_bytes: float) -> str:
    """``1536`` → ``"1.5 KiB"``; binary units, one decimal from KiB up."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n_bytes) < 1024 or unit == "TiB":
            return f"{int(n_bytes)} B" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _non_negative_days(text: str) -> float:
    days = float(text)
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of days >= 0, got {text!r}")
    return days


def _verify(cache: FeatureCache, fix: bool) -> None:
    """Print each bad entry and a summary; SystemExit(1) while bad entries remain."""
    summary = cache.verify(fix=fix)
    for bad in summary["bad"]:
        print(f"bad{' (removed)' if bad['removed'] else ''}: {bad['key']}: {bad['problem']}")
    n_bad = len(summary["bad"])
    removed = n_bad - summary["remaining_bad"]
    print(
        f"verified {summary['checked']} entries in {summary['root']}: {summary['ok']} ok, {n_bad} bad"
        + (f", {removed} removed" if fix else "")
    )
    if summary["skipped_in_use"]:
        print(f"skipped {summary['skipped_in_use']} keys in use by a running job")
    if summary["stale_files"]:
        print(f"{summary['stale_files']} leftover temp/metadata files (rdx-cache clean removes them)")
    if summary["remaining_bad"]:
        hint = "could not be removed" if fix else "remain; rdx-cache verify --fix removes them"
        print(f"{summary['remaining_bad']} bad entries {hint}")
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-cache", description="Size, verify and clean the feature cache."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="cache folder (default: $RDX_ROOT/outputs/cache, or ./outputs/cache)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{size,verify,clean}")
    commands.add_parser("size", help="entries, disk use and age of the cache")
    verify = commands.add_parser(
        "verify",
        help="check every entry (readable, metadata, content digest); exit status 1 while bad ones remain",
    )
    verify.add_argument("--fix", action="store_true", help="remove the bad entries (runs compute them again)")
    clean = commands.add_parser("clean", help="remove entries, leftover temp files and lock files")
    clean.add_argument(
        "--older-than",
        type=_non_negative_days,
        default=None,
        metavar="DAYS",
        help="remove only entries created more than DAYS days ago (default: all)",
    )
    clean.add_argument("--dry-run", action="store_true", help="show what would be removed, remove nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    root = default_cache_root() if args.root is None else args.root
    cache = FeatureCache(root)

    if args.command == "size":
        report = cache.report()
        print(f"cache:   {report['root']}")
        print(f"entries: {report['entries']}")
        print(f"size:    {human_bytes(report['bytes'])}")
        if report["entries"]:
            print(f"oldest:  {report['oldest']}")
            print(f"newest:  {report['newest']}")
        if report["stale_files"]:
            print(
                f"stale:   {report['stale_files']} leftover temp/metadata files, "
                f"{human_bytes(report['stale_bytes'])} (rdx-cache clean removes them)"
            )
        return

    if args.command == "verify":
        _verify(cache, fix=args.fix)
        return

    summary = cache.clean(older_than_days=args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {summary['removed_entries']} entries, {summary['removed_stale_files']} stale files, "
        f"{summary['removed_lock_files']} lock files from {root}; "
        f"{'would free' if args.dry_run else 'freed'} {human_bytes(summary['bytes_freed'])}"
    )
    if summary["skipped_in_use"]:
        print(f"skipped {summary['skipped_in_use']} keys in use by a running job")


if __name__ == "__main__":
    main()
