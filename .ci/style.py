"""STYLE rule 1: no function over 30 code lines, no module over 400 lines, no layer
factory over 60 lines with its docstring and closures (under fnn/).

Code lines exclude blank lines, comments and docstrings. Prints offenders; exit 1 if any.
"""
import ast
import sys
from pathlib import Path

MAX_FUNCTION, MAX_MODULE, MAX_FACTORY = 30, 400, 60


def code_lines(node, source_lines):
    doc = ast.get_docstring(node, clean=False)
    body = node.body[1:] if doc is not None and node.body else node.body
    if not body:
        return 0
    lines = source_lines[body[0].lineno - 1: node.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def offenders(root: Path):
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_MODULE:
            yield f"{path}: module has {len(lines)} lines (> {MAX_MODULE})"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # a factory's nested closures count separately, so subtract them
                inner = sum(code_lines(n, lines) + 1 for n in node.body
                            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
                n = code_lines(node, lines) - inner
                if n > MAX_FUNCTION:
                    yield f"{path}:{node.lineno}: {node.name} has {n} code lines (> {MAX_FUNCTION})"
                whole = node.end_lineno - node.lineno + 1
                if "layers" in path.parts and node.name[:1].isupper() and whole > MAX_FACTORY:
                    yield f"{path}:{node.lineno}: layer factory {node.name} has {whole} lines (> {MAX_FACTORY})"


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "fnn")
    found = list(offenders(root))
    print("\n".join(found) or "style: ok")
    sys.exit(1 if found else 0)
