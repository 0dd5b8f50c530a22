"""The docs site: generated pages up to date, ``mkdocs build --strict`` clean, every nav page present, and the
code blocks marked runnable run (``<!-- runnable -->`` before a ```bash block of ``latsim`` lines; ``<!-- file: NAME -->``
before a block writes it first)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"<!-- (runnable|file: ([\w.-]+)) -->\n```\w*\n(.*?)```", re.S)


def test_generated_pages_are_up_to_date():
    """docs/reference/scenario.md and docs/commands/*.md are what tools/docs_pages.py writes from the code — in a fresh
    process, as a user runs it (this one's registries may hold policies other tests registered)."""
    checked = subprocess.run([sys.executable, "tools/docs_pages.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, f"run `python tools/docs_pages.py`: {checked.stdout} {checked.stderr}"


def test_the_scenario_reference_has_every_field_of_the_schema():
    from simulator.scenario.schema import Scenario

    page = (ROOT / "docs/reference/scenario.md").read_text(encoding="utf-8")
    schema = Scenario.model_json_schema()
    for name, model in schema["$defs"].items():
        assert f"## {name}\n" in page, name
        for field in model.get("properties", {}):
            assert f"| `{field}` |" in page, f"{name}.{field}"
    assert "| `deadline_ms` | " in page and "| ms |" in page  # units come from the names


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return [page for item in node for page in _nav_pages(item)]


def test_every_nav_page_exists_and_every_command_has_one():
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert not missing
    commands = [str(path.relative_to(DOCS)) for path in (DOCS / "commands").glob("*.md")]
    assert sorted(commands) == sorted(page for page in nav if page.startswith("commands/"))


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_mkdocs_builds_strict(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "site" / "reference" / "scenario" / "index.html").is_file()
    assert (tmp_path / "site" / "python-api" / "index.html").read_text(encoding="utf-8").count('class="doc doc-heading"') >= 4


def _runnable_pages() -> dict[str, list[tuple[str | None, str]]]:
    """Per page, its marked blocks in order: (file name, text) for a file to write, (None, text) for commands to run."""
    pages = {}
    for path in sorted(DOCS.rglob("*.md")):
        blocks = [(match.group(2), match.group(3)) for match in BLOCK.finditer(path.read_text(encoding="utf-8"))]
        if blocks:
            pages[str(path.relative_to(DOCS))] = blocks
    return pages


def test_the_marker_convention_finds_the_runnable_pages():
    pages = _runnable_pages()
    assert {"getting-started.md", "tutorial.md"} <= set(pages)
    assert any(name == "replicas.yaml" for name, _ in pages["tutorial.md"])


@pytest.mark.parametrize("page", sorted(_runnable_pages()))
def test_runnable_blocks_run(page, tmp_path, monkeypatch):
    """Each page's blocks run in a fresh folder that sees the repository's scenarios and profiles, in the page's order."""
    for shared in ("scenarios", "profiles"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    monkeypatch.chdir(tmp_path)
    for name, text in _runnable_pages()[page]:
        if name is not None:
            (tmp_path / name).write_text(text, encoding="utf-8")
            continue
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            assert words and words[0] == "latsim", f"{page}: a runnable block runs latsim commands only: {line}"
            result = CliRunner().invoke(app, words[1:], env={"COLUMNS": "120"})
            assert result.exit_code == 0, f"{page}: {line}\n{result.output}"
