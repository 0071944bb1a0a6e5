"""`rnnplay runs`: the recorded runs: list, show, compare, export, remove, import.

    rnnplay runs [--corpus C] [--status S] [--limit N] [--json]
    rnnplay runs show ID [--json]
    rnnplay runs compare ID ID ... [--json]
    rnnplay runs export [ID ...] (--csv FILE | --jsonl FILE | --tensorboard DIR) [--force]
    rnnplay runs rm ID ...
    rnnplay runs import PATH ...

The store is ``checkpoints/runs.db`` unless ``--runs-db PATH`` or $RNNPLAY_RUNS_DB says otherwise.
Listing, showing, comparing and exporting open it read-only. No torch import except ``import``
and ``--tensorboard``.
"""

from __future__ import annotations

import argparse
import json
import sys

from rnnplay.commands._types import positive_int
from rnnplay.runs.store import STATUSES

ACTIONS = ("show", "compare", "export", "rm", "import")


def _store_flag(p: argparse.ArgumentParser, sub: bool) -> None:
    kw = {"default": argparse.SUPPRESS} if sub else {"default": None}
    p.add_argument("--runs-db", metavar="PATH", help="the run store (default checkpoints/runs.db, or $RNNPLAY_RUNS_DB)", **kw)


def _json_flag(p: argparse.ArgumentParser, sub: bool) -> None:
    kw = {"default": argparse.SUPPRESS} if sub else {"default": False}
    p.add_argument("--json", action="store_true", help="print JSON instead of a table", **kw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("List the recorded runs, newest first (every rnnplay train, app and sweep run is "
                          "recorded in the run store), or show, compare, export, remove or import runs.")
    _store_flag(parser, sub=False)
    _json_flag(parser, sub=False)
    parser.add_argument("--corpus", metavar="C", help="only runs on this corpus (name or path)")
    parser.add_argument("--status", choices=STATUSES, help="only runs with this status")
    parser.add_argument("--sweep", metavar="NAME", help="only the runs of this sweep")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="at most N runs")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="a run's config, summary and loss plot",
                          description="Show a run's config, summary, loss plot and last sample.")
    show.add_argument("id", type=positive_int, metavar="ID")
    comp = sub.add_parser("compare", help="the settings that differ between runs, and their metrics",
                          description="Compare runs: the settings that differ, side by side, and the final metrics.")
    comp.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    exp = sub.add_parser("export", help="metrics to CSV, JSON Lines or TensorBoard",
                         description="Export per-step metrics (all runs unless IDs are given) to CSV, JSON Lines "
                                     "(FILE or - for stdout) or TensorBoard event files "
                                     "(needs pip install 'rnnplay[tensorboard]').")
    exp.add_argument("ids", type=positive_int, nargs="*", metavar="ID")
    fmt = exp.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", metavar="FILE")
    fmt.add_argument("--jsonl", metavar="FILE")
    fmt.add_argument("--tensorboard", metavar="DIR")
    exp.add_argument("--force", action="store_true", help="replace an existing FILE")
    rm = sub.add_parser("rm", help="remove runs from the store (their checkpoints stay)",
                        description="Remove runs and their metrics from the store; checkpoint files are kept.")
    rm.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    rm.add_argument("--force", action="store_true", help="also remove a run that is still running")
    imp = sub.add_parser("import", help="add runs from existing checkpoints' metric histories",
                         description="Add runs from checkpoint files (or folders of them), from the metric "
                                     "history each holds; checkpoints already recorded are skipped.")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    for p in (show, comp, exp, rm, imp):
        _store_flag(p, sub=True)
    for p in (show, comp):
        _json_flag(p, sub=True)


def _open(args: argparse.Namespace, readonly: bool = True):
    from rnnplay.runs.store import RunStore, resolve_path

    path = resolve_path(args.runs_db)
    if path is None:
        from rnnplay.errors import UserError

        raise UserError("the run store is turned off ($RNNPLAY_RUNS_DB or --runs-db is 'off'); give a store path")
    return RunStore.open(path, readonly=readonly)


def _print(lines) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # `rnnplay runs export --csv - | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    action = args.action
    if action in (None, "show", "compare"):
        return _read(args)
    if action == "export":
        return _export(args)
    if action == "rm":
        return _rm(args)
    return _import(args)


def _read(args: argparse.Namespace) -> int:
    from rnnplay.runs import report

    with _open(args) as store:
        if args.action is None:
            runs = store.runs(corpus=args.corpus, status=args.status, sweep=args.sweep, limit=args.limit)
            if args.json:
                print(json.dumps([r.to_dict() for r in runs]))
            elif not runs:
                print(f"no runs recorded in {store.path} yet" + (" (with these filters)" if
                      args.corpus or args.status or args.sweep else "; rnnplay train records one"))
            else:
                _print(report.run_table(runs))
            return 0
        if args.action == "show":
            r = store.get(args.id)
            evals, samples = store.evals(r.id), store.samples(r.id)
            if args.json:
                print(json.dumps({**r.to_dict(), "evals": [list(e) for e in evals],
                                  "samples": [list(s) for s in samples]}))
                return 0
            metrics = store.metrics(r.id)
            _print(report.run_details(r))
            print()
            print("  loss (braille: train, o: validation)")
            _print("  " + ln for ln in report.plot(
                [([m[0] for m in metrics], [m[2] for m in metrics], ""), ([e[0] for e in evals], [e[2] for e in evals], "o")]))
            if samples:
                step, text = samples[-1]
                print(f"\n  sample at step {step}:")
                _print("  | " + ln for ln in text.strip("\n").splitlines()[:6])
            return 0
        runs = [store.get(i) for i in args.ids]
        if args.json:
            from rnnplay.runs.report import differing_settings

            print(json.dumps({"differs": differing_settings(runs), "runs": [r.to_dict() for r in runs]}))
        else:
            _print(report.compare(runs))
        return 0


def _selected(store, ids):
    return [store.get(i) for i in ids] if ids else list(reversed(store.runs()))


def _export(args: argparse.Namespace) -> int:
    from rnnplay.runs import export

    with _open(args) as store:
        runs = _selected(store, args.ids)
        if args.tensorboard:
            folders = export.write_tensorboard(store, runs, args.tensorboard)
            print(f"wrote {len(folders)} run(s) to {args.tensorboard}; view with: tensorboard --logdir {args.tensorboard}",
                  file=sys.stderr)
            return 0
        target = args.csv or args.jsonl
        fh = export.open_output(target, args.force)
        try:
            n = (export.write_csv if args.csv else export.write_jsonl)(store, runs, fh)
        finally:
            if fh is not sys.stdout:
                fh.close()
        if target != "-":
            print(f"wrote {n} rows of {len(runs)} run(s) to {target}", file=sys.stderr)
        return 0


def _rm(args: argparse.Namespace) -> int:
    from rnnplay.errors import UserError

    with _open(args, readonly=False) as store:
        runs = [store.get(i) for i in args.ids]
        live = [r.id for r in runs if r.status == "running"]
        if live and not args.force:
            raise UserError(f"run {', '.join(map(str, live))} is still running; stop it first, or pass --force")
        n = store.delete_runs([r.id for r in runs])
        print(f"removed {n} run(s) from {store.path} (their checkpoint files are kept)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from rnnplay.runs.importer import checkpoint_files, import_checkpoint

    files = checkpoint_files(args.paths)
    if not files:
        from rnnplay.errors import UserError

        raise UserError(f"no .pt files in {', '.join(args.paths)}; give checkpoint files or folders of them")
    added = 0
    with _open(args, readonly=False) as store:
        for f in files:
            result = import_checkpoint(store, f)
            if result.run_id is not None:
                added += 1
                print(f"run {result.run_id}: {f}")
            else:
                print(f"skipped {f}: {result.note}", file=sys.stderr)
    print(f"imported {added} of {len(files)} checkpoint(s)")
    return 0
