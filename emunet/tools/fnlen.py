"""List functions longer than a limit and files longer than a limit.

    python -m emunet.tools.fnlen [--function-lines 60] [--file-lines 800] [PATH ...]

A function's length counts its lines from the ``def`` (decorators excluded) to its last line,
docstring and comments included, as a reader sees it.  Nested functions count inside their
parent and on their own.  Exit status 1 when anything is over a limit, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs

FUNCTION_LINES = 60
FILE_LINES = 800


@attrs.frozen
class Finding:
    """One function or file over its limit."""

    path: str
    line: int  #: first line of the function (1 for a file)
    name: str  #: qualified function name, or "" for a whole file
    lines: int  #: its length in lines

    def __str__(self) -> str:
        what = f"{self.name}()" if self.name else "file"
        return f"{self.path}:{self.line}: {what} {self.lines} lines"


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def scan_source(
    source: str,
    path: str,
    *,
    function_lines: int = FUNCTION_LINES,
    file_lines: int = FILE_LINES,
) -> list[Finding]:
    """Findings for one module's source text."""
    findings = []
    total = len(source.splitlines())
    if total > file_lines:
        findings.append(Finding(path, 1, "", total))
    for name, node in _functions(ast.parse(source, filename=path)):
        length = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
        if length > function_lines:
            findings.append(Finding(path, node.lineno, name, length))  # type: ignore[attr-defined]
    return findings


def scan(
    paths: list[Path], *, function_lines: int = FUNCTION_LINES, file_lines: int = FILE_LINES
) -> list[Finding]:
    """Findings for every ``.py`` file under ``paths``, in path order."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    findings = []
    for f in files:
        shown = f.resolve()
        if shown.is_relative_to(Path.cwd()):
            shown = shown.relative_to(Path.cwd())
        findings.extend(
            scan_source(
                f.read_text(), str(shown), function_lines=function_lines, file_lines=file_lines
            )
        )
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emunet.tools.fnlen", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--function-lines", type=int, default=FUNCTION_LINES)
    parser.add_argument("--file-lines", type=int, default=FILE_LINES)
    args = parser.parse_args(argv)
    paths = args.paths or [Path(__file__).resolve().parent.parent]
    for p in paths:
        if not p.exists():
            print(f"fnlen: {p}: no such file or directory", file=sys.stderr)
            return 2
    findings = scan(paths, function_lines=args.function_lines, file_lines=args.file_lines)
    for f in findings:
        print(f)
    print(
        f"{len(findings)} over the limits (functions > {args.function_lines} lines, "
        f"files > {args.file_lines} lines)"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
