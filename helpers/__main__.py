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


def _train(args: argparse.Namespace) -> int:
    from .train import get_config, train

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
    config = get_config(args.config).replace(**changes)
    record = train(args.model, args.data, config, profile=args.profile, save=not args.no_save, progress=not args.quiet)
    split = "test" if record.metrics.get("test") else "valid"
    shown = {k: round(v, 4) for k, v in record.metrics[split].items() if isinstance(v, float)}
    print(f"{split}: {shown}")
    print(f"wall time: {record.wall_time_s:.1f} s")
    return 0


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
    elif args.action == "linkcheck-config":
        print(f"wrote {site.write_linkcheck_config(args.path or '_build/linkcheck/_config.yml')}")
    else:  # "failures": name what failed in a book build's log
        if not args.path:
            print("site failures: give the build log's path", file=sys.stderr)
            return 2
        print(site.report(site.build_failures(Path(args.path).read_text(encoding="utf-8", errors="replace"))))
    return 0


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
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: blood the chapter's, others 4)")
    p.add_argument("--max-train", type=int, default=None, help="training-image cap (blood: the profile's, others 1500)")
    p.add_argument("--if-missing", action="store_true", help="only tasks without a checkpoint")
    p.add_argument("--no-download", action="store_true", help="never try to download a dataset")
    p.set_defaults(func=_app_models)

    p = sub.add_parser("train", help="train an image classifier and write its run record and checkpoint")
    p.add_argument("--data", required=True, help="registry name (pneumoniamnist, pbc, nih, ...)")
    p.add_argument("--model", default="resnet18", help="timm name or one of the theses' models (default: resnet18)")
    p.add_argument("--profile", default=None, help="smoke | quick | full (default: $MEDVIT_PROFILE or quick)")
    p.add_argument(
        "--config",
        "--recipe",
        dest="config",
        default="one_cycle",
        help="a named TrainConfig: one_cycle | constant | fastai_fine_tune | three_stage | adamw | ... "
        "(helpers.configs.list_configs())",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
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
    p.add_argument("--no-save", action="store_true", help="do not write a run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("data", help="datasets: where each is read from, download the free ones, fill the cache")
    p.add_argument("action", choices=["describe", "download", "cache"])
    p.add_argument("names", nargs="*", help="registry names (default: pbc nih covid mias cbis_ddsm)")
    p.add_argument("--profile", default=None, help="for 'cache': the profile whose size and caps to use")
    p.set_defaults(func=_data)

    p = sub.add_parser("site", help="the book online: Pages URL, link-check set-up, what failed in a build log")
    p.add_argument("action", choices=["url", "online", "linkcheck-config", "failures"])
    p.add_argument("path", nargs="?", help="linkcheck-config: where to write it; failures: the build log")
    p.set_defaults(func=_site)

    # Other commands (training a model, listing app models, ...) add their sub-parser here.
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
