"""The GitHub workflows call the Makefile and nothing else, and cache what helpers.config reads."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import chapter
from helpers.data.download import download_dir
from helpers.data.specs import DATASETS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
MAKEFILE = ROOT / "Makefile"
_SHELL_OPERATORS = set("&|;<>()`$")


def make_targets(makefile: Path) -> set[str]:
    """The explicit targets a Makefile defines (``name: ...`` rules; not ``NAME := value``, not ``.PHONY``)."""
    rules = re.findall(r"^([A-Za-z0-9][\w.-]*(?:[ \t]+[A-Za-z0-9][\w.-]*)*)[ \t]*:(?!=)", makefile.read_text(), re.M)
    return {name for rule in rules for name in rule.split()}


def _command_problems(script: str, targets: set[str]) -> list[str]:
    """What is wrong with one ``run:`` script, given the Makefile's targets (``[]``: it only calls make)."""
    lines = [line.strip() for line in script.replace("\\\n", " ").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    if not commands:
        return ["runs nothing"]
    problems = []
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError as exc:
            problems.append(f"`{command}` does not parse ({exc})")
            continue
        if words[0] != "make" or any(_SHELL_OPERATORS & set(word) for word in words):
            problems.append(f"`{command}` is not a call of a Makefile target (make [NAME=VALUE ...] TARGET ...)")
            continue
        named = [word for word in words[1:] if "=" not in word]
        if not named:
            problems.append(f"`{command}` names no target")
        for word in named:
            if word.startswith("-"):
                problems.append(f"`{command}`: make options ({word}) belong in the Makefile")
            elif word not in targets:
                problems.append(f"`{command}`: the Makefile has no target {word!r}")
    return problems


def run_step_problems(workflows: Path, makefile: Path) -> tuple[int, list[str]]:
    """``(number of run steps, problems)`` over every workflow in ``workflows``."""
    targets, steps, problems = make_targets(makefile), 0, []
    for path in sorted([*workflows.glob("*.yml"), *workflows.glob("*.yaml")]):
        jobs = (yaml.safe_load(path.read_text()) or {}).get("jobs") or {}
        for job_id, job in jobs.items():
            for i, step in enumerate(job.get("steps") or []):
                if "run" in step:
                    steps += 1
                    where = f"{path.name}: job {job_id}, step {step.get('name') or i + 1}"
                    problems += [f"{where}: {p}" for p in _command_problems(str(step["run"]), targets)]
    return steps, problems


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _run_steps(name: str) -> list[str]:
    return [s["run"].strip() for job in _workflow(name)["jobs"].values() for s in job["steps"] if "run" in s]


def test_the_makefile_targets_are_read():
    targets = make_targets(MAKEFILE)
    assert {"book", "test", "lint", "data", "publish", "linkcheck", "book-strict", "browser"} <= targets
    assert not {"SHELL", "BIN", "PROFILE", "DATA", "PHONY", ".PHONY"} & targets


def test_every_run_step_calls_a_makefile_target():
    steps, problems = run_step_problems(WORKFLOWS, MAKEFILE)
    assert steps >= 4, "the workflows were not found"
    assert problems == []
    assert _run_steps("book.yml") == ["make data", "make book", "make linkcheck"]
    assert _run_steps("test.yml") == ["make test"]


def test_the_check_fails_on_a_step_that_is_not_a_make_target(tmp_path):
    """A copy of the workflows with three bad steps: each is reported, the good ones are not."""
    shutil.copytree(WORKFLOWS, tmp_path / "workflows")
    path = tmp_path / "workflows" / "book.yml"
    book = yaml.safe_load(path.read_text())
    book["jobs"]["build"]["steps"] += [
        {"name": "pip by hand", "run": "pip install -e ."},
        {"name": "unknown target", "run": "make deploy-everything"},
        {"name": "chained", "run": "make book && ghp-import -p _build/html"},
    ]
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    steps, problems = run_step_problems(tmp_path / "workflows", MAKEFILE)
    assert steps == len(_run_steps("book.yml")) + len(_run_steps("test.yml")) + 3
    assert len(problems) == 3, problems
    assert "step pip by hand: `pip install -e .` is not a call of a Makefile target" in problems[0]
    assert "the Makefile has no target 'deploy-everything'" in problems[1]
    assert "step chained" in problems[2]


@pytest.mark.parametrize("name", ["book.yml", "test.yml"])
def test_caches_are_where_helpers_config_looks(name, monkeypatch, tmp_path):
    """The workflows set MEDVIT_CACHE/DATA/RUNS (the variables helpers.config reads) and cache under them."""
    workflow = _workflow(name)
    source = (ROOT / "helpers" / "config.py").read_text()
    for var in ("MEDVIT_CACHE", "MEDVIT_DATA", "MEDVIT_RUNS"):
        assert var in workflow["env"] and f'"{var}"' in source
    monkeypatch.setenv("MEDVIT_CACHE", str(tmp_path))
    downloads = "${{ env.MEDVIT_CACHE }}/" + str(download_dir("mias").parent.relative_to(tmp_path))
    paths = [
        s["with"]["path"] for job in workflow["jobs"].values() for s in job["steps"] if "cache" in s.get("uses", "")
    ]
    assert downloads in paths, "the download cache is not cached"
    assert any(p.splitlines()[0] == "${{ env.MEDVIT_CACHE }}" for p in paths), "the decode-once cache is not cached"
    setup = [s for job in workflow["jobs"].values() for s in job["steps"] if "setup-python" in s.get("uses", "")]
    assert setup and all(s["with"]["cache"] == "pip" for s in setup)


def test_the_book_is_deployed_from_the_configured_branch():
    book = _workflow("book.yml")
    triggers = book.get("on") or book.get(True)  # YAML 1.1 reads a bare `on` as true
    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    assert triggers["push"]["branches"] == [branch] and "workflow_dispatch" in triggers
    upload = [s for s in book["jobs"]["build"]["steps"] if "upload-pages-artifact" in s.get("uses", "")]
    assert upload[0]["with"]["path"] == "_build/html"
    assert "_build/html" in MAKEFILE.read_text()
    deploy = book["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert "linkcheck" not in str(deploy.get("needs")), "a broken link must not hold back the book"
    test = _workflow("test.yml")
    triggers = test.get("on") or test.get(True)
    assert {"push", "pull_request"} <= set(triggers)
    assert "gh-pages" in triggers["push"]["branches-ignore"], "the published HTML has no Makefile to test"
    assert chapter.repository_url().startswith("https://github.com/")


def _dataset_names(node: ast.AST, assigned: dict[str, ast.AST]) -> set[str]:
    """The registry names among the string constants of ``node``, following a variable to its assignment."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value in DATASETS:
            names.add(sub.value)
        elif isinstance(sub, ast.Name) and sub.id in assigned:
            names |= _dataset_names(assigned.pop(sub.id), assigned)
    return names


def _declared_datasets() -> set[str]:
    """What each chapter's ``runinfo.show(..., datasets=...)`` names: a list of names, or variables
    assigned in the same cell (``DATASET = "nih" if profile.name == "full" else "nih_64px"``)."""
    names: set[str] = set()
    for nb in (ROOT / "book").rglob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "runinfo.show(" not in source:
                continue
            tree = ast.parse(source)
            assigned = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)}  # fmt: skip
            for call in ast.walk(tree):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "show":
                    for kw in call.keywords:
                        if kw.arg == "datasets":
                            names |= _dataset_names(kw.value, dict(assigned))
    return names


def test_make_data_downloads_what_the_chapters_can_download():
    declared = _declared_datasets()
    assert declared, "no chapter declares its datasets"
    # a task cut from another dataset (mias_lesions from mias) is downloaded as that dataset
    downloadable = {DATASETS[name].folder or name for name in declared if DATASETS[name].downloader is not None}
    data = re.search(r"^DATA \?= (.*)$", MAKEFILE.read_text(), re.M)
    assert data and set(data.group(1).split()) == downloadable


ACTIONLINT = shutil.which("actionlint") or shutil.which("actionlint", path=str(ROOT / ".venv" / "bin"))


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed (pip install -e '.[dev]')")
def test_actionlint_passes_the_workflows_and_fails_a_broken_one(tmp_path):
    actionlint = str(ACTIONLINT)
    assert "actionlint .github/workflows/*.yml" in MAKEFILE.read_text().split("\nlint:")[1].split("\n\n")[0]
    good = subprocess.run([actionlint, *sorted(map(str, WORKFLOWS.glob("*.yml")))], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "broken.yml"
    text = (
        (WORKFLOWS / "test.yml")
        .read_text()
        .replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    needs: nojob")
    )
    broken.write_text(text)
    bad = subprocess.run([actionlint, str(broken)], capture_output=True, text=True)
    assert bad.returncode == 1 and "nojob" in bad.stdout
