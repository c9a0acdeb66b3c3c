"""Command line: ``python -m helpers <command> ...`` (``python -m helpers --help`` lists them)."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def _assignments(items: list[str]) -> dict[str, object]:
    """``["NAME=VALUE", ...]`` as a dict; values are Python literals where they parse, else strings."""
    out: dict[str, object] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def _new_chapter(args: argparse.Namespace) -> int:
    from .chapter import new_chapter

    path = new_chapter(args.path, args.title, params=_assignments(args.param), datasets=args.dataset)
    print(f"wrote {path}")
    return 0


def _app_models(args: argparse.Namespace) -> int:
    from .app_models import train_app_models

    train_app_models(
        args.tasks,
        profile=args.profile,
        epochs=args.epochs,
        max_train=args.max_train,
        if_missing=args.if_missing,
        download=not args.no_download,
    )
    return 0


def _train_settings(args: argparse.Namespace) -> tuple[str, str, object, str | None]:
    """``(model, data, TrainConfig, profile)`` from the flags, or from the run folder of ``--resume``."""
    from .training.config import TrainConfig
    from .training.resume import read_state
    from .training.tasks import dataset_for_task, load_config

    flags = {
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "mixup": args.mixup,
        "label_smoothing": args.label_smoothing,
        "pretrained": args.pretrained,
        "seed": args.seed,
    }
    changes = {**{k: v for k, v in flags.items() if v is not None}, **_assignments(args.set)}
    if args.resume:
        meta = read_state(args.resume)["meta"]
        config = TrainConfig.from_dict(meta["config"]).replace(**changes)
        return args.model or meta["model"], meta["data"], config, meta["profile"]
    if not (args.task or args.data):
        raise SystemExit("train: give --task (or --data), or --resume <run folder>")
    data = dataset_for_task(args.task or args.data)
    return args.model or "resnet18", data, load_config(args.config).replace(**changes), args.profile


def _train(args: argparse.Namespace) -> int:
    from . import distributed
    from .config import Profile, get_profile
    from .train import train

    model, data, config, profile = _train_settings(args)
    caps = {k: v for k, v in (("max_train", args.max_train), ("max_eval", args.max_eval)) if v is not None}
    if isinstance(profile, dict):
        profile = Profile(**profile).replace(**caps)
    elif caps:
        profile = get_profile(profile, **caps)
    record = train(
        model,
        data,
        config,
        profile=profile,
        save=not args.no_save,
        progress=not args.quiet,
        resume=args.resume,
    )
    if distributed.is_main():
        split = "test" if record.metrics.get("test") else "valid"
        shown = {k: round(v, 4) for k, v in record.metrics[split].items() if isinstance(v, float)}
        print(f"{split}: {shown}")
        print(f"wall time: {record.wall_time_s:.1f} s ({distributed.world_size()} process(es))")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import contextlib
    import json

    from .training.evaluate import evaluate_checkpoint
    from .training.tasks import dataset_for_task

    # stdout carries only the JSON (`... evaluate run > metrics.json`); what loading says goes to stderr
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluate_checkpoint(args.run, dataset_for_task(args.task), args.split, profile=args.profile)
    print(json.dumps(result, indent=2))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import run_sweep, sweep_table

    results = run_sweep(
        args.notebook,
        [(name, values) for name, *values in args.param],
        jobs=args.jobs,
        out_dir=args.out,
        profile=args.profile,
        timeout=args.timeout,
    )
    print(sweep_table(results).to_string(index=False))
    return 0 if all(r.ok for r in results) else 1


def _data(args: argparse.Namespace) -> int:
    from .data import DATASETS, describe_source, load_dataset
    from .data.download import DownloadError, download

    names = args.names or [n for n, spec in DATASETS.items() if spec.kind == "folder"]  # MedMNIST by name only
    if args.action == "describe":
        for name in names:
            print(f"{name:<15} {describe_source(name)}")
        return 0
    if args.action == "download":
        status = 0
        for name in names:
            try:
                print(f"{name}: {download(name)}")
            except DownloadError as err:
                print(f"{name}: {err}")
                status = 1
        return status
    for name in names:  # "cache": decode every split once at the profile's size
        for split in ("train", "valid", "test"):
            load_dataset(name, split, profile=args.profile)
    return 0


def _check_pages(html: Path) -> int:
    from . import config, pagecheck

    roots = pagecheck.machine_roots()
    problems = pagecheck.check_site(html, config.repo_root() / "book" / "references.bib", roots)
    print("\n".join(map(str, problems)) or f"{len(pagecheck.chapter_pages(html))} pages: nothing to report")
    return 1 if problems else 0


def _site(args: argparse.Namespace) -> int:
    from . import site

    if args.action == "url":
        print(site.pages_url())
    elif args.action == "online":
        try:
            print(f"{site.require_online()} is reachable")
        except site.OfflineError as err:
            print(err, file=sys.stderr)
            return 1
    elif args.action == "unexecuted-config":
        print(f"wrote {site.write_unexecuted_config(args.path or '_build/unexecuted/_config.yml')}")
    elif args.action == "stage-executed":  # the book with the chapters nbval executed, for the strict build
        dest = site.stage_executed_book(args.path or "_build/executed", args.dest or "_build/strict/src")
        print(f"staged the executed book at {dest}")
    elif args.action == "check-pages":  # the built pages as a reader meets them (no browser)
        return _check_pages(Path(args.path or "_build/html"))
    elif args.action == "build":  # make book: every page executed and built, then the failed ones named
        return site.build_book(args.path or ".", args.dest or "_build/book.log")
    elif args.action == "perturbed-root":  # a data root unlike the shared one, for make book MEDVIT_DATA=...
        from .perturbed import perturbed_root

        print(perturbed_root(args.path or "_build/perturbed-data", args.dest).describe())
    elif args.path:  # "failures LOG": name what failed in a book build's log
        print(site.report(site.build_failures(Path(args.path).read_text(encoding="utf-8", errors="replace"))))
    else:  # "failures": the pages of this build (MEDVIT_BUILD) that did not run to the end
        failures = site.recorded_failures()
        print(site.report(failures) if failures else "no page of this build recorded a failed cell")
        return 1 if failures else 0
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` command's arguments."""
    p = sub.add_parser(
        "train",
        help="train an image classifier and write its run record and checkpoint (torchrun/accelerate launch: DDP)",
    )
    p.add_argument("--task", default=None, help="blood-cells | pneumonia | chest-xray | ... or a registry name")
    p.add_argument("--data", default=None, help="registry name (pneumoniamnist, pbc, nih, ...): as --task")
    p.add_argument("--model", default=None, help="timm name or one of the theses' models (default: resnet18)")
    p.add_argument("--profile", default=None, help="smoke | quick | full (default: $MEDVIT_PROFILE or quick)")
    p.add_argument(
        "--config",
        "--recipe",
        dest="config",
        default="one_cycle",
        help="a named TrainConfig (one_cycle | constant | fastai_fine_tune | three_stage | adamw | ...: "
        "helpers.configs.list_configs()) or a YAML/TOML file of TrainConfig fields",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="the global batch (split over processes)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--mixup", type=float, default=None, help="MixUp Beta alpha (0: off; default: the config's)")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ImageNet weights (default: the profile's; needs internet the first time)",
    )
    p.add_argument("--seed", type=int, default=None, help="default: the config's (42)")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for any other TrainConfig setting")
    p.add_argument("--max-train", type=int, default=None, help="at most this many training images (the profile's)")
    p.add_argument("--max-eval", type=int, default=None, help="at most this many validation/test images each")
    p.add_argument("--resume", default=None, help="continue the interrupted run in this run folder")
    p.add_argument("--no-save", action="store_true", help="do not write a run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)


def _add_scale(sub: argparse._SubParsersAction) -> None:
    """The ``evaluate`` and ``sweep`` commands' arguments."""
    p = sub.add_parser("evaluate", help="a saved model (run folder) on a split of a task's data: metrics as JSON")
    p.add_argument("run", help="run folder (or its checkpoint folder)")
    p.add_argument("--task", required=True, help="task or registry name of the data")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--profile", default=None, help="its data caps (default: $MEDVIT_PROFILE or quick)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("sweep", help="execute a chapter once per combination of parameters with papermill")
    p.add_argument("notebook")
    p.add_argument(
        "-p", "--param", nargs="+", action="append", default=[], metavar=("NAME", "VALUE"), help="NAME V1 V2 ..."
    )
    p.add_argument("--jobs", type=int, default=1, help="notebooks executed at once (default: 1)")
    p.add_argument("--out", default=None, help="folder for the executed notebooks (default: <runs>/sweeps/<stamp>)")
    p.add_argument("--profile", default=None, help="PROFILE passed to every notebook (default: the notebook's)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per notebook (default: none)")
    p.set_defaults(func=_sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("new-chapter", help="write a new chapter notebook with the template cells")
    p.add_argument("path")
    p.add_argument("title")
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE for the parameters cell")
    p.add_argument("--dataset", action="append", default=[], help="dataset the run-info cell reports")
    p.set_defaults(func=_new_chapter)

    p = sub.add_parser("app-models", help="train one small model per app task (blood cells, chest X-ray, mammogram)")
    p.add_argument("--tasks", nargs="+", default=None, help="tasks to train (default: all): blood chest mammo")
    p.add_argument("--profile", default="quick", help="profile for image size and data caps (default: quick)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the task's chapter's)")
    p.add_argument("--max-train", type=int, default=None, help="training-image cap (default: the profile's)")
    p.add_argument("--if-missing", action="store_true", help="only tasks without a checkpoint")
    p.add_argument("--no-download", action="store_true", help="never try to download a dataset")
    p.set_defaults(func=_app_models)

    _add_train(sub)
    _add_scale(sub)

    p = sub.add_parser("data", help="datasets: where each is read from, download the free ones, fill the cache")
    p.add_argument("action", choices=["describe", "download", "cache"])
    p.add_argument("names", nargs="*", help="registry names (default: pbc nih covid mias cbis_ddsm)")
    p.add_argument("--profile", default=None, help="for 'cache': the profile whose size and caps to use")
    p.set_defaults(func=_data)

    p = sub.add_parser(
        "site", help="the book: build it, what failed in a build, Pages URL, link check, a perturbed data root"
    )
    p.add_argument(
        "action",
        choices=["url", "online", "unexecuted-config", "stage-executed", "check-pages", "build", "failures"]
        + ["perturbed-root"],
    )
    p.add_argument(
        "path",
        nargs="?",
        help="unexecuted-config: where to write it; stage-executed: the executed notebooks; "
        "check-pages: the HTML folder (default _build/html); build: the book's folder (default .); "
        "failures: the build log (none: the failed pages MEDVIT_BUILD recorded); perturbed-root: where to make it",
    )
    p.add_argument(
        "dest",
        nargs="?",
        help="stage-executed: where to lay out the book (default _build/strict/src); build: the log "
        "(default _build/book.log); perturbed-root: the root it varies (default ../shared/data)",
    )
    p.set_defaults(func=_site)

    # Other commands (training a model, listing app models, ...) add their sub-parser here.
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
