"""Claims: the book's scientific statements, checked in code and recorded in a ledger.

A chapter states a claim ("the Transformer copies dates with exact match >= 0.90 at ``quick``") and
checks it with :func:`check`. Each call is recorded, so the book can list every claim of its last
build (the ledger page) and ``make book`` / ``make verify`` can end non-zero naming the claims that
failed, after every page was built::

    check("exact match on held-out dates", exact, ">=", 0.90, chapter="transformer",
          profile=profile, data_source="synthetic dates (generated)", spread="0.971-0.992 over SEED 0-3")

What happens when a claim fails depends on ``MEDVIT_CLAIMS``:

``raise`` (the default: a notebook run by hand, in Colab or by papermill)
    an ``AssertionError`` naming the claim, as a plain ``assert`` would.
``record`` (set by the book build, :mod:`helpers.bookbuild`)
    the failure is printed on the page and recorded; the page and the rest of the book still build,
    and the build's last step (``python -m helpers.claims report --fail``) fails naming it.

A claim is checked only at the profiles where its bound means something (``quick`` and ``full`` by
default); at ``smoke`` it is recorded as *not checked*, with the reason and still with its measured value
(marked where that value contradicts the bound). The claims a build should record are listed, as data,
in :mod:`helpers.expected_claims`; the report names any that a build did not record, and ``--fail``
fails on them as on a failed claim. Records go to
``<runs>/builds/<build id>/claims.jsonl``; the build id comes from ``MEDVIT_BUILD`` (set per book
build) and is ``interactive`` otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import operator
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config

__all__ = [
    "Claim",
    "OPS",
    "check",
    "build_id",
    "build_dir",
    "builds",
    "latest_build",
    "ledger",
    "failed",
    "expected",
    "missing",
    "build_profile",
    "ledger_table",
    "page_times",
    "report",
]

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
CHECKED_AT = ("quick", "full")
INTERACTIVE = "interactive"


@dataclass(frozen=True)
class Claim:
    """One checked (or deliberately unchecked) claim of a chapter.

    Attributes:
        name: what is claimed, in words ("exact match on held-out dates").
        chapter: the chapter that makes the claim (its file name without suffix).
        value: the measured value, also when not checked (``None`` only where it was not a finite number).
        op: the comparison, one of :data:`OPS`.
        bound: the bound the value is compared with.
        profile: the profile of the run that measured it.
        data_source: where the data came from (real sample, download, synthetic stand-in ...).
        spread: the spread measured over seeds that the bound was set below, in words.
        status: ``"pass"``, ``"fail"`` or ``"not checked"``.
        reason: why a claim was not checked at this profile ("" otherwise).
        build: the build id the record belongs to.
        time: when it was checked (UTC, ISO 8601).
    """

    name: str
    chapter: str
    value: float | None
    op: str
    bound: float
    profile: str
    data_source: str
    spread: str = ""
    status: str = "pass"
    reason: str = ""
    build: str = INTERACTIVE
    time: str = ""

    @property
    def passed(self) -> bool:
        """Whether the claim held (a claim not checked neither passed nor failed)."""
        return self.status == "pass"

    @property
    def contradicts(self) -> bool:
        """A claim not checked whose measured value does not satisfy its bound."""
        return self.status == "not checked" and self.value is not None and not OPS[self.op](self.value, self.bound)

    def describe(self) -> str:
        """One line: the claim, its value against its bound, and where the value comes from."""
        if self.status == "not checked":
            against = " - CONTRADICTS the bound" if self.contradicts else ""
            return (
                f"claim not checked at {self.profile}: {self.name} = {_fmt(self.value)} (bound {self.op} "
                f"{_fmt(self.bound)}{against}; {self.reason})"
            )
        mark = "holds" if self.passed else "FAILED"
        spread = f"; seeds: {self.spread}" if self.spread else ""
        return (
            f"claim {mark}: {self.name} = {_fmt(self.value)} (bound {self.op} {_fmt(self.bound)}"
            f"{spread}; {self.profile}, {self.data_source})"
        )


def _fmt(value: float | None) -> str:
    """A number at three significant digits (integers as they are)."""
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not a finite number (a claim not checked keeps what it can)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def build_id() -> str:
    """The current build's id: ``MEDVIT_BUILD``, else ``interactive``."""
    return os.environ.get("MEDVIT_BUILD", "").strip() or INTERACTIVE


def build_dir(build: str | None = None, create: bool = False) -> Path:
    """``<runs>/builds/<build id>``: the claims and page times of one book build."""
    path = config.runs_dir(create=create) / "builds" / (build or build_id())
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _profile_name(profile: Any) -> str:
    """A profile's name, from a :class:`~helpers.config.Profile` or a string."""
    return str(getattr(profile, "name", profile))


def _mode() -> str:
    """``raise`` or ``record`` (``MEDVIT_CLAIMS``); anything else is an error."""
    mode = os.environ.get("MEDVIT_CLAIMS", "raise").strip().lower() or "raise"
    if mode not in ("raise", "record"):
        raise ValueError(f"MEDVIT_CLAIMS={mode!r}: use 'raise' (default) or 'record'")
    return mode


def _record(claim: Claim) -> None:
    """Append one claim to its build's ``claims.jsonl``."""
    path = build_dir(claim.build, create=True) / "claims.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(dataclasses.asdict(claim)) + "\n")


def check(
    name: str,
    value: float,
    op: str,
    bound: float,
    *,
    chapter: str,
    profile: Any,
    data_source: str,
    spread: str = "",
    checked_at: Sequence[str] = CHECKED_AT,
    reason: str = "",
) -> Claim:
    """Check that ``value op bound`` holds, record it, and say so on the page.

    Args:
        name: the claim in words.
        value: the measured value.
        op: ``">="``, ``">"``, ``"<="``, ``"<"`` or ``"=="``.
        bound: the bound; set it below the spread measured over several seeds.
        chapter: the chapter making the claim.
        profile: the run's :class:`~helpers.config.Profile` (or its name).
        data_source: where the data came from, in words.
        spread: the spread over seeds the bound was set from ("0.971-0.992 over SEED 0-3").
        checked_at: the profiles at which the bound means something.
        reason: why it is not checked at the other profiles (a default is given).

    Returns:
        The recorded :class:`Claim`.

    Raises:
        ValueError: for an unknown ``op`` or a value that is not a finite number.
        AssertionError: when the claim fails and ``MEDVIT_CLAIMS`` is not ``record``.
    """
    if op not in OPS:
        raise ValueError(f"claim {name!r}: unknown comparison {op!r}; use one of {', '.join(OPS)}")
    pname = _profile_name(profile)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    common = dict(name=name, chapter=chapter, op=op, bound=float(bound), profile=pname, data_source=data_source)
    common.update(spread=spread, build=build_id(), time=stamp)
    if pname not in checked_at:
        why = reason or f"a {pname} run is too small for the bound to mean anything; checked at {', '.join(checked_at)}"
        kept = _finite(value)
        claim = Claim(value=kept, status="not checked", reason=why, **common)
    else:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"claim {name!r}: the measured value is {number}, not a finite number")
        claim = Claim(value=number, status="pass" if OPS[op](number, float(bound)) else "fail", **common)
    _record(claim)
    if claim.status == "fail":
        if _mode() == "raise":
            raise AssertionError(claim.describe())
        print(claim.describe(), file=sys.stderr)  # shown on the page in a red box; the build goes on
    else:
        print(claim.describe())
    return claim


def builds() -> list[str]:
    """The build ids with a ledger, oldest first (by the time of their last record)."""
    root = config.runs_dir(create=False) / "builds"
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob("*/claims.jsonl")] + [p.parent for p in root.glob("*/pages.json")]
    return [p.name for p in sorted(set(found), key=lambda p: max(f.stat().st_mtime for f in p.iterdir()))]


def latest_build() -> str | None:
    """The build to show: ``MEDVIT_BUILD`` when set, else the most recent build with a ledger."""
    if os.environ.get("MEDVIT_BUILD", "").strip():
        return build_id()
    known = [b for b in builds() if b != INTERACTIVE]
    return known[-1] if known else None


def ledger(build: str | None = None) -> list[Claim]:
    """The claims of one build, the last record of each (chapter, name), in the order first checked."""
    build = build or latest_build()
    path = build_dir(build) / "claims.jsonl" if build else None
    if path is None or not path.is_file():
        return []
    fields = {f.name for f in dataclasses.fields(Claim)}
    latest: dict[tuple[str, str], Claim] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            claim = Claim(**{k: v for k, v in data.items() if k in fields})
            latest.pop((claim.chapter, claim.name), None)  # a re-run replaces, and moves to the end
            latest[(claim.chapter, claim.name)] = claim
    return list(latest.values())


def failed(claims: Iterable[Claim]) -> list[Claim]:
    """The claims that did not hold."""
    return [c for c in claims if c.status == "fail"]


def ledger_table(claims: Iterable[Claim]) -> Any:
    """The ledger as a pandas DataFrame: chapter, claim, value, bound, spread, profile, data, status."""
    import pandas as pd

    rows = [
        {
            "chapter": c.chapter,
            "claim": c.name,
            "value": _fmt(c.value),
            "bound": f"{c.op} {_fmt(c.bound)}",
            "seeds": c.spread,
            "profile": c.profile,
            "data": c.data_source,
            "status": _status_text(c),
        }
        for c in claims
    ]
    columns = ["chapter", "claim", "value", "bound", "seeds", "profile", "data", "status"]
    return pd.DataFrame(rows, columns=columns)


def _status_text(claim: Claim) -> str:
    """``pass``, ``fail``, or ``not checked: <reason>``, marked where the value contradicts the bound."""
    if claim.status != "not checked":
        return claim.status
    return ("not checked, value contradicts the bound: " if claim.contradicts else "not checked: ") + claim.reason


def expected(profile: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The claims a build at ``profile`` should record, from :data:`helpers.expected_claims.EXPECTED`:
    ``(chapter, name pattern, checked_at)`` for each claim its chapter makes at that profile."""
    from .expected_claims import ALL, EXPECTED

    out = []
    for chapter, entries in EXPECTED.items():
        for entry in entries:
            name, checked_at, made_at = (*entry, ALL) if len(entry) == 2 else entry
            if profile in made_at:
                out.append((chapter, name, tuple(checked_at)))
    return out


def missing(claims: Iterable[Claim], profile: str) -> list[tuple[str, str]]:
    """``(chapter, name pattern)`` of each expected claim (:func:`expected`) that no recorded claim matches."""
    from fnmatch import fnmatchcase

    seen = [(c.chapter, c.name) for c in claims]
    return [
        (chapter, name)
        for chapter, name, _ in expected(profile)
        if not any(ch == chapter and fnmatchcase(n, name) for ch, n in seen)
    ]


def build_profile(claims: Sequence[Claim]) -> str:
    """The profile of a build: the most common among its claims, else ``MEDVIT_PROFILE`` (or the default)."""
    if claims:
        names = [c.profile for c in claims]
        return max(set(names), key=names.count)
    return config.get_profile(None).name


def page_times(build: str | None = None) -> dict[str, float]:
    """Seconds each page of a build took to read (execute), as :mod:`helpers.bookbuild` recorded them."""
    build = build or latest_build()
    path = build_dir(build) / "pages.json" if build else None
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {page: float(entry["seconds"]) for page, entry in data.items() if "seconds" in entry}


def report(build: str | None = None, profile: str | None = None) -> tuple[str, list[Claim], list[tuple[str, str]]]:
    """The ledger and page times of a build as text, the claims that failed, and the expected claims that
    the build did not record (``profile``: the build's, by default the most common among its claims)."""
    build = build or latest_build()
    claims = ledger(build)
    profile = profile or build_profile(claims)
    lines = [f"Claims of build {build or '(none)'}: {len(claims)} recorded"]
    for c in claims:
        lines.append(f"  [{c.status:^11}] {c.chapter}: {c.describe()}")
    times = page_times(build)
    if times:
        lines.append("Time per page (s):")
        lines += [f"  {seconds:8.1f}  {page}" for page, seconds in times.items()]
        lines.append(f"  {sum(times.values()):8.1f}  in all")
    bad, absent = failed(claims), missing(claims, profile)
    lines.append(
        f"{len(expected(profile))} claims expected at {profile} (helpers/expected_claims.py), {len(absent)} missing"
    )
    lines += [f"  MISSING {chapter}: {name}" for chapter, name in absent]
    if bad:
        lines.append(f"{len(bad)} claim(s) FAILED:")
        lines += [f"  {c.chapter}: {c.name} = {_fmt(c.value)}, bound {c.op} {_fmt(c.bound)}" for c in bad]
    return "\n".join(lines), bad, absent


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.claims report [--build ID] [--profile P] [--fail]``: print a build's ledger."""
    parser = argparse.ArgumentParser(prog="python -m helpers.claims", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="print the ledger and page times of a build")
    rep.add_argument("--build", default=None, help="build id (default: MEDVIT_BUILD or the latest)")
    rep.add_argument("--profile", default=None, help="the build's profile (default: its claims' own)")
    rep.add_argument("--fail", action="store_true", help="exit 1 when a claim failed or is missing, naming it")
    args = parser.parse_args(argv)
    text, bad, absent = report(args.build, args.profile)
    print(text)
    if (bad or absent) and args.fail:
        named = [f"{c.chapter}: {c.name}" for c in bad] + [f"{ch}: {n} (missing)" for ch, n in absent]
        print("make: the book built, but these claims do not hold or were not recorded: " + "; ".join(named))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
