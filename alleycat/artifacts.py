"""Which template a local stack deploys: the ``sam build`` output when it is current, else the source.

``sam build`` writes ``.aws-sam/build/template.yaml`` whose functions point at the lean artifact
folders it built (see functions/Makefile). Deploying that template locally runs the very code that
``sam deploy`` uploads; but a build older than the sources would run yesterday's code, so then the
source template (handlers imported straight from the project) is the honest choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCE_TEMPLATE = Path("template.yaml")
BUILT_TEMPLATE = Path(".aws-sam") / "build" / "template.yaml"
# Besides the packages inside the artifacts, a build depends on these (relative to the project).
BUILD_INPUTS = ("template.yaml", "uv.lock", "functions")
_SKIPPED = {"__pycache__"}


@dataclass(frozen=True)
class TemplateChoice:
    """The template to deploy and, for the user, why it was chosen."""

    path: Path
    reason: str
    built: bool


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in path.rglob("*"):
        if child.is_file() and not _SKIPPED.intersection(child.parts) and child.suffix != ".pyc":
            yield child


def build_sources(project: Path, build_dir: Path) -> list[Path]:
    """What the build in ``build_dir`` was made from: the build inputs, and every first-party
    package (a package folder at the project root) that some function artifact contains."""
    packages = {
        entry.name
        for artifact in build_dir.iterdir()
        if artifact.is_dir()
        for entry in artifact.iterdir()
        if entry.is_dir() and (project / entry.name / "__init__.py").is_file()
    }
    roots = [project / name for name in BUILD_INPUTS] + [project / name for name in sorted(packages)]
    return [file for root in roots if root.exists() for file in _files(root)]


def choose_template(project: Path = Path()) -> TemplateChoice:
    """``.aws-sam/build/template.yaml`` when it exists and no source it was built from changed
    after it was written, else ``template.yaml``."""
    source, built = project / SOURCE_TEMPLATE, project / BUILT_TEMPLATE
    if not built.is_file():
        return TemplateChoice(source, "no `sam build` output: functions run from the source tree", False)
    built_at = built.stat().st_mtime
    newest = max(build_sources(project, built.parent), key=lambda file: file.stat().st_mtime, default=None)
    if newest is not None and newest.stat().st_mtime > built_at:
        changed = newest.relative_to(project)
        return TemplateChoice(
            source,
            f"{changed} changed after the last `sam build` (run it again to deploy the artifacts): "
            "functions run from the source tree",
            False,
        )
    return TemplateChoice(built, "the `sam build` artifacts, current with the sources", True)
