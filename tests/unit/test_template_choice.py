"""`alleycat up` deploys the `sam build` output when it is current with the sources, else template.yaml."""

from __future__ import annotations

import os
from pathlib import Path

from alleycat.artifacts import BUILT_TEMPLATE, SOURCE_TEMPLATE, choose_template


def _project(root: Path, *, built: bool) -> Path:
    """A project with a template, one package, and optionally a build whose artifact holds it."""
    (root / "template.yaml").write_text("Resources: {}\n")
    (root / "leaderboard").mkdir()
    (root / "leaderboard" / "__init__.py").write_text("")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("not built from\n")
    if built:
        artifact = root / ".aws-sam" / "build" / "ApiFunction" / "leaderboard"
        artifact.mkdir(parents=True)
        (artifact / "__init__.py").write_text("")
        (root / BUILT_TEMPLATE).write_text("Resources: {}\n")
    return root


def _age(path: Path, seconds_ago: float) -> None:
    when = path.stat().st_mtime - seconds_ago
    os.utime(path, (when, when))


def test_without_a_build_the_source_template_is_deployed(tmp_path: Path) -> None:
    choice = choose_template(_project(tmp_path, built=False))

    assert choice.path == tmp_path / SOURCE_TEMPLATE
    assert not choice.built
    assert "no `sam build` output" in choice.reason


def test_a_current_build_is_deployed(tmp_path: Path) -> None:
    project = _project(tmp_path, built=True)
    for source in (project / "template.yaml", project / "leaderboard" / "__init__.py"):
        _age(source, 60)

    choice = choose_template(project)

    assert choice.path == project / BUILT_TEMPLATE
    assert choice.built


def test_a_source_changed_after_the_build_means_the_source_template(tmp_path: Path) -> None:
    project = _project(tmp_path, built=True)
    _age(project / "template.yaml", 60)
    _age(project / BUILT_TEMPLATE, 30)  # the package's module is newer than the build

    choice = choose_template(project)

    assert choice.path == project / SOURCE_TEMPLATE
    assert not choice.built
    assert str(Path("leaderboard") / "__init__.py") in choice.reason


def test_files_the_build_does_not_read_do_not_make_it_stale(tmp_path: Path) -> None:
    project = _project(tmp_path, built=True)
    for source in (project / "template.yaml", project / "leaderboard" / "__init__.py"):
        _age(source, 60)
    (project / "notes" / "todo.txt").write_text("edited after the build\n")
    (project / "leaderboard" / "__pycache__").mkdir()
    (project / "leaderboard" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")

    assert choose_template(project).built
