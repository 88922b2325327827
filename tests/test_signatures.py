"""Options travel as one object: no runtime function takes more than 10 parameters.

A run's options are a RunOptions (run/options.py); a function that needs an 11th argument is
threading an option through signatures, which is what the one run engine removed. The typer
command functions of the CLI are the exception: typer declares each option as a parameter.
"""
from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "runtime" / "bossnet_onnx"
LIMIT = 10


def _count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    n = len(names) + bool(args.vararg) + bool(args.kwarg)
    return n - (1 if names and names[0] in ("self", "cls") else 0)


def _typer_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
               and d.func.attr in ("command", "callback") for d in node.decorator_list)


def test_no_runtime_function_takes_more_than_ten_parameters():
    found = [f"{path.relative_to(RUNTIME)}:{node.lineno} {node.name} ({_count(node)})"
             for path in sorted(RUNTIME.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(), str(path)))
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and not _typer_command(node) and _count(node) > LIMIT]
    assert found == []


def test_the_check_sees_typer_commands_and_long_signatures():
    tree = ast.parse("@app.command()\ndef a(p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11): pass\n"
                     "def b(self, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, *, p11=0): pass\n")
    a, b = tree.body
    assert _typer_command(a) and not _typer_command(b)
    assert _count(a) == 11 and _count(b) == 11
