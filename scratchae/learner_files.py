"""A reader's own Python file, loaded so that any mistake in it is one sentence naming the file and the line.

``scratchae gradcheck --layer my_layers.py:LeakyReLU(0.1)`` and ``scratchae exercises check`` run code the reader
wrote. A syntax error, an import that fails, a missing class or a constructor that raises is theirs to fix, so it
becomes an :class:`OwnCodeError` whose message says where (``my_layers.py, line 7: NameError: ...``), never a
traceback through this library. Constructor arguments are read as Python literals (:func:`ast.literal_eval`), never
evaluated as code.
"""

from __future__ import annotations

import ast
import sys
import traceback
import types
from pathlib import Path


class OwnCodeError(Exception):
    """The reader's file cannot be loaded or used; the message names the file, the line and the problem."""


def load_file(path) -> types.ModuleType:
    """Run the Python file ``path`` as a fresh module (its folder importable while it runs) and return it."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OwnCodeError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise OwnCodeError(f"{path}, line {error.lineno}: syntax error: {error.msg}") from None
    name = f"scratchae_own_code_{abs(hash(str(path.resolve())))}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up there
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        exec(code, module.__dict__)
    except Exception as error:  # anything their file raises while it runs is theirs: one line, no traceback
        del sys.modules[name]
        raise OwnCodeError(f"{located(error, path)}: {_raised(error)}") from None
    except BaseException:  # sys.exit or Ctrl-C: what it means is the caller's to say (an exercise's verdict...)
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def located(error: BaseException, path) -> str:
    """``"my_layers.py, line 7"``: the last line of ``path`` in the error's traceback (or just the file)."""
    path = Path(path)
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if Path(frame.filename).resolve() == path.resolve()]
    return f"{path}, line {lines[-1]}" if lines else str(path)


def parse_spec(spec: str) -> tuple[Path, str, tuple, dict]:
    """``"my_layers.py:LeakyReLU(0.1, alpha=2)"`` -> (path, class name, positional arguments, keyword arguments).

    The arguments must be Python literals (numbers, strings, tuples, lists, dicts, True, False, None).
    """
    file, colon, call = spec.rpartition(":")
    if not colon or not file.endswith(".py") or not call.strip():
        raise OwnCodeError(f"expected FILE.py:ClassName or FILE.py:ClassName(arguments), got {spec!r}")
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        raise OwnCodeError(f"cannot read {call!r}: expected ClassName or ClassName(arguments)") from None
    if isinstance(node, ast.Name):
        return Path(file), node.id, (), {}
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise OwnCodeError(f"cannot read {call!r}: expected ClassName or ClassName(arguments)")
    try:
        args = tuple(ast.literal_eval(argument) for argument in node.args)
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords if keyword.arg}
    except ValueError:
        raise OwnCodeError(f"the arguments of {call!r} must be plain values (numbers, strings, tuples...)") from None
    if len(kwargs) != len(node.keywords):
        raise OwnCodeError(f"cannot read {call!r}: ** arguments are not allowed")
    return Path(file), node.func.id, args, kwargs


def build(spec: str):
    """The object ``spec`` describes (``"my_layers.py:LeakyReLU(0.1)"``), built from the reader's file."""
    path, class_name, args, kwargs = parse_spec(spec)
    try:
        module = load_file(path)
    except SystemExit as error:  # would end the command with its status, as if the check had run
        raise OwnCodeError(f"{located(error, path)}: {_raised(error)}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        defined = sorted(name for name, value in vars(module).items()
                         if isinstance(value, type) and value.__module__ == module.__name__)
        found = f" (it defines {', '.join(defined)})" if defined else " (it defines no class)"
        raise OwnCodeError(f"{path} has no class {class_name}{found}")
    try:
        return cls(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # their constructor: one line naming where it failed
        call = f"{class_name}({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"
        raise OwnCodeError(f"{located(error, path)}: {call} failed: {_raised(error)}") from None


def _raised(error: BaseException) -> str:
    """``"NameError: name 'x' is not defined"``, or ``"called sys.exit(0)"``: what the reader's code did."""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r}); a file of layers must define them, not end the program"
    return f"{type(error).__name__}: {error}"
