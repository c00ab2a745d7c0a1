"""A learner's mistakes told in the learner's words: an exception (which array, which shape, which line), and a
convolution's kernel that is not flipped.

NumPy's own text for the most common first mistake in a backward pass, ``dy @ W`` where ``dy @ W.T`` belongs, is
``matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc signature (n?,k),(k,m?)->(n?,m?)``.
Everything needed to say it plainly is at hand when it happens: the traceback's frame at the learner's line holds
every variable of that line, and Python (3.11 and later) gives the columns of the expression that failed. So
:func:`describe` finds that expression in the learner's source, looks its arrays up in the frame, and says

    Dense.backward raised ValueError: dL/dx must be (N, D_in) = (4, 5); `dy @ self.W.data` is (4, 3) @ (5, 3),
    and the 3 columns of dy do not meet the 5 rows of self.W.data; `dy @ self.W.data.T` would be (4, 3) @ (3, 5)
    = (4, 5) (my_layers.py, line 12)

The shape the result must have is named from the layer's docstrings where they give one (``dx: (N, D_in)``). A
``+=`` on a gradient that is still None (``self.W.grad += ...`` on a first call) says that backward sets ``grad``;
a gradient handed to a layer that cannot take it (Sequential's layers asked in the wrong order) names that layer.
Only names, attributes, subscripts, arithmetic and NumPy's own functions are evaluated again to find the shapes,
never the learner's own code; whatever cannot be read that way keeps NumPy's text and the shapes that can be found.

:func:`kernel_turned` tells a convolution whose dL/dx is right for its kernel turned by 180 degrees: the flip that a
full convolution of dy needs, forgotten.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import operator
import re
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from scratchae.numerical import compare


@dataclass(frozen=True)
class Expected:
    """What the caller knows about the call that failed: its result (``name``, e.g. ``"dL/dx"``) must have
    ``shape``; ``shapes`` holds the arrays the call was given (``{"x": (4, 5), "dy": (4, 3)}``), whose sizes the
    layer's docstrings may name (``x: (N, D_in)``)."""

    name: str
    shape: tuple
    shapes: dict = field(default_factory=dict)


def describe(what: str, error: BaseException, function=None, expected: Expected | None = None) -> str:
    """One sentence for ``error``, raised while running ``what`` (``"Dense.backward"``), ending with the learner's
    file and line: ``"Dense.backward raised ValueError: ... (my_layers.py, line 12)"``.

    ``function`` is the function that was called: a ``return`` on its own lines computes ``expected``.
    """
    if isinstance(error, SystemExit):  # sys.exit() in a layer would end the check itself, passing nothing
        return f"{what} called sys.exit({error.code!r}); a layer's method must return{where_raised(error)}"
    return f"{what} raised {type(error).__name__}: {explain(error, function, expected) or error}{where_raised(error)}"


def explain(error: BaseException, function=None, expected: Expected | None = None) -> str | None:
    """What :func:`describe` says about ``error`` (without the head and the line), or None where it cannot tell
    more than the error's own text."""
    try:
        return _told(error, function, expected)
    except Exception:  # reading the learner's frame is a courtesy: it must never hide their error
        return None


def where_raised(error: BaseException) -> str:
    """`` (my_layers.py, line 12)``: the last line of the traceback outside this library and NumPy, if any."""
    found = _learner_frame(error)
    if found is None:
        return ""
    summary = found[1]
    return f" ({Path(summary.filename).name}, line {summary.lineno})"


# ---------------------------------------------------------------------------------------------------------------
# The learner's line: its frame, its statement and the expression that failed


def _library_folders() -> tuple[str, ...]:
    return str(Path(__file__).resolve().parent), str(Path(numpy.__file__).resolve().parent)


def _learner_frame(error: BaseException):
    """(frame, FrameSummary) of the last traceback entry outside this library and NumPy (or the last of all)."""
    entries = []
    tb = error.__traceback__
    while tb is not None:
        entries.append(tb.tb_frame)
        tb = tb.tb_next
    summaries = traceback.extract_tb(error.__traceback__)
    if not summaries or len(summaries) != len(entries):
        return None
    library = _library_folders()
    pairs = list(zip(entries, summaries))
    outside = [pair for pair in pairs
               if not any(Path(pair[1].filename).resolve().is_relative_to(folder) for folder in library)]
    return (outside or pairs)[-1]


@dataclass
class _Line:
    """The failing expression (``node``), its statement and its function, read from the learner's source."""

    frame: object
    node: ast.AST | None
    statement: ast.stmt
    function: ast.FunctionDef | None
    source: str

    def text(self, node) -> str:
        """The learner's code for ``node``, on one line."""
        return re.sub(r"\s*\n\s*", " ", ast.get_source_segment(self.source, node) or ast.unparse(node))

    def value(self, node):
        return _evaluate(node, self.frame.f_locals, self.frame.f_globals)


def _read_line(error: BaseException) -> _Line | None:
    found = _learner_frame(error)
    if found is None:
        return None
    frame, summary = found
    linecache.checkcache(summary.filename)  # the file as it is now, if it was changed since it was last read
    source = "".join(linecache.getlines(summary.filename))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    statement, function, node = None, None, None
    for candidate in ast.walk(tree):
        if not hasattr(candidate, "lineno") or not candidate.lineno <= summary.lineno <= candidate.end_lineno:
            continue
        if isinstance(candidate, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if function is None or candidate.lineno >= function.lineno:
                function = candidate
        elif isinstance(candidate, ast.stmt) and not isinstance(candidate, _COMPOUND):
            statement = candidate
        if summary.colno is not None and (candidate.lineno, candidate.col_offset, candidate.end_lineno,
                                          candidate.end_col_offset) == (summary.lineno, summary.colno,
                                                                        summary.end_lineno, summary.end_colno):
            node = candidate if node is None or isinstance(node, ast.stmt) else node
    if statement is None:
        return None
    return _Line(frame, node, statement, function, source)


_COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.AsyncFor, ast.While, ast.If,
             ast.With, ast.AsyncWith, ast.Try)


# ---------------------------------------------------------------------------------------------------------------
# What went wrong, in words


def _told(error, function, expected) -> str | None:
    line = _read_line(error)
    if line is None:
        return None
    if isinstance(error, (TypeError, AttributeError)) and "NoneType" in str(error):
        return _none_operand(line)
    if isinstance(error, ValueError):
        return _shapes(line, function, expected, str(error))
    return None


def _none_operand(line: _Line) -> str | None:
    """``self.W.grad += ...`` (or ``self.W.grad + ...``) while ``self.W.grad`` is None: backward sets ``grad``."""
    node = line.node or line.statement
    first = [node.target] if isinstance(node, ast.AugAssign) else []
    for part in first + [part for part in ast.walk(node) if isinstance(part, (ast.Name, ast.Attribute))]:
        try:
            if line.value(part) is not None:
                continue
        except _Unreadable:
            continue
        name, code = line.text(part), line.text(line.statement)
        if name.endswith(".grad"):
            return (f"`{code}` reads {name}, which is None until a backward sets it: backward sets grad "
                    f"(`{name} = ...`), it does not add to it (`+=`), so that a second call gives the same gradient")
        return (f"`{name}` is None in `{code}`: it must hold an array by then (is it set, and does every function "
                f"that gives it `return` it?)")
    return None


def _shapes(line: _Line, function, expected, numpy_text: str) -> str | None:
    """A product or an elementwise operation whose shapes do not fit: which arrays, which shapes, what must come."""
    must = _must(line, function, expected)
    node = line.node
    handed = _handed_to_a_layer(line, node)
    if handed:
        return handed
    letters = _einsum(line, node)
    if letters:
        return must.sentence() + letters
    operation = _two_operands(line, node)
    if operation is not None:
        left_node, symbol, right_node = operation
        try:
            left, right = line.value(left_node), line.value(right_node)
        except _Unreadable:
            left = right = None
        if _is_array(left) and _is_array(right) and (symbol == "@" or symbol.endswith("(@)")):
            return must.sentence() + _product(line, left_node, symbol, right_node, left, right, must)
        if _is_array(left) and _is_array(right):
            return must.sentence() + _elementwise(line, left_node, symbol, right_node, left, right)
    arrays = _arrays_in(line, node or line.statement)
    if not arrays and not must.known:
        return None
    listed = ", ".join(f"{name} is {shape}" for name, shape in arrays)
    return must.sentence() + numpy_text.strip() + (f"; in `{line.text(node or line.statement)}`, {listed}"
                                                   if listed else "")


def _einsum(line: _Line, node) -> str:
    """``numpy.einsum("nohw,oc->nchw", a, b)`` whose letters do not fit the operands: which letter has which size
    in which operand, or which operand has more axes than letters."""
    if not isinstance(node, ast.Call) or len(node.args) < 2:
        return ""
    try:
        function, subscripts = line.value(node.func), line.value(node.args[0])
        operands = [line.value(argument) for argument in node.args[1:]]
    except _Unreadable:
        return ""
    if function is not numpy.einsum or not isinstance(subscripts, str) or "." in subscripts:
        return ""
    inputs = subscripts.replace(" ", "").split("->")[0].split(",")
    if len(inputs) != len(operands) or not all(_is_array(operand) for operand in operands):
        return ""
    code, texts = line.text(node), [line.text(argument) for argument in node.args[1:]]
    sizes = {}
    for letters, operand, text in zip(inputs, operands, texts):
        if len(letters) != operand.ndim:
            return (f"in `{code}`, '{letters}' names {len(letters)} axes of {text}, which has {operand.ndim}: "
                    f"{_shape(operand.shape)}")
        for letter, size in zip(letters, operand.shape):
            if letter in sizes and sizes[letter][0] != size and 1 not in (size, sizes[letter][0]):
                other_size, other_text = sizes[letter]
                return (f"in `{code}`, the letter {letter} is {other_size} in {other_text} but {size} in {text} "
                        f"({', '.join(f'{t} is {_shape(o.shape)}' for t, o in zip(texts, operands))})")
            sizes.setdefault(letter, (size, text))
    return ""


_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
            ast.Mod: "%", ast.MatMult: "@", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">="}


def _two_operands(line: _Line, node):
    """(left, symbol, right) of ``a @ b``, ``a * b``, ``a += b`` (symbol ``+=``) or ``a == b``, else None; a
    product written ``numpy.dot(a, b)`` or ``numpy.matmul(a, b)`` has the symbol ``numpy.dot(@)``."""
    if isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords:
        try:
            function = line.value(node.func)
        except _Unreadable:
            return None
        if function is numpy.dot or function is numpy.matmul:
            return node.args[0], f"{line.text(node.func)}(@)", node.args[1]
    if isinstance(node, ast.BinOp) and type(node.op) in _SYMBOLS:
        return node.left, _SYMBOLS[type(node.op)], node.right
    if isinstance(node, ast.AugAssign) and type(node.op) in _SYMBOLS:
        return node.target, _SYMBOLS[type(node.op)] + "=", node.value
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _SYMBOLS:
        return node.left, _SYMBOLS[type(node.ops[0])], node.comparators[0]
    return None


def _handed_to_a_layer(line: _Line, node) -> str:
    """``layer.backward(dy)`` failing inside that layer: the gradient handed to it does not fit it."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or node.func.attr != "backward":
        return ""
    try:
        layer = line.value(node.func.value)
        given = [line.value(argument) for argument in node.args[:1]]
    except _Unreadable:
        return ""
    if not given or not _is_array(given[0]) or not callable(inspect.getattr_static(layer, "forward", None)):
        return ""
    return (f"`{line.text(node)}` handed {type(layer).__name__}.backward a gradient of shape {_shape(given[0].shape)} "
            f"that does not fit it: a layer's backward takes the gradient of its own output (are the layers asked in "
            f"the right order, each given what the one after it returned?)")


@dataclass
class _Must:
    """The shape the failing line's result must have, and its name (``dL/dx``), if known."""

    name: str = ""
    shape: tuple = ()
    symbols: tuple = ()
    known: bool = False

    def sentence(self) -> str:
        if not self.known:
            return ""
        comma = "," if len(self.symbols) == 1 else ""
        symbolic = f"({', '.join(self.symbols)}{comma}) = " if self.symbols else ""
        return f"{self.name} must be {symbolic}{_shape(self.shape)}; "


def _must(line: _Line, function, expected) -> _Must:
    """What the statement computes: the called function's return value (``expected``), or a parameter's
    gradient (``self.W.grad = ...``), whose shape is the parameter's."""
    statement = line.statement
    symbols = _docstring_symbols(line.frame, expected)
    targets = getattr(statement, "targets", None) or ([statement.target] if hasattr(statement, "target") else [])
    for target in targets:
        if isinstance(target, ast.Attribute) and target.attr == "grad":
            try:
                owner = line.value(target.value)
            except _Unreadable:
                continue
            shape = getattr(getattr(owner, "data", owner), "shape", None)
            if shape is not None:
                name = line.text(target.value).removeprefix("self.")
                return _Must(f"dL/d{name}", tuple(shape), symbols.naming(tuple(shape)), True)
    if expected is None or not _is_called(line.frame, function):
        return _Must()
    in_loop = any(isinstance(node, (ast.For, ast.While)) and statement in ast.walk(node)
                  for node in ast.walk(line.function)) if line.function is not None else False
    returned = isinstance(statement, ast.Return) or not in_loop and any(  # in a loop, a name is a step on the way
        isinstance(target, ast.Name) and target.id in _returned_names(line.function) for target in targets)
    if not returned:
        return _Must()
    array = expected.name.rsplit("/d", 1)[-1]  # "dL/dx" -> "x"
    own = symbols.shapes.get(f"d{array}") or symbols.shapes.get(array)
    named = own if own is not None and len(own) == len(expected.shape) else symbols.naming(expected.shape)
    return _Must(expected.name, tuple(expected.shape), named, True)


def _is_called(frame, function) -> bool:
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    return code is not None and frame.f_code is code


def _returned_names(function) -> set[str]:
    """The names a ``return`` gives back, alone or scaled (``return dx``, ``return grad / len(labels)``): each has
    the shape of the result."""
    names = set()
    for node in ast.walk(function) if function is not None else ():
        parts = [node.value] if isinstance(node, ast.Return) and node.value is not None else []
        while parts:
            part = parts.pop()
            if isinstance(part, ast.Name):
                names.add(part.id)
            elif isinstance(part, ast.BinOp) and not isinstance(part.op, ast.MatMult):
                parts += [part.left, part.right]
            elif isinstance(part, ast.UnaryOp):
                parts.append(part.operand)
    return names


#: ``dy: (N, D_out)``, ``pred, target: (N, D)``, ``dL/dlogits: (N, C)``: a name, the symbols of its shape.
_SHAPE_IN_DOCSTRING = re.compile(r"\b(d?(?:x|y|pred|logits))(?:\s*,\s*\w+)*\s*:\s*\(([A-Za-z_][\w, ]*)\)")

#: Which array of :attr:`Expected.shapes` sizes each name a docstring gives a shape to (``dy: (N, D_out)``).
_SIZED_BY = {"x": "x", "dx": "x", "y": "dy", "dy": "dy", "pred": "pred", "dpred": "pred", "logits": "pred",
             "dlogits": "pred"}


@dataclass
class _Symbols:
    """The docstrings' shapes (``{"dx": ("N", "D_in")}``) and the size of each symbol (``{"N": 4, "D_in": 5}``)."""

    shapes: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)

    def naming(self, shape: tuple) -> tuple:
        """The symbol of every size of ``shape`` when each size has exactly one, else ()."""
        named = []
        for size in shape:
            matching = [symbol for symbol, value in self.sizes.items() if value == size]
            if len(matching) != 1:
                return ()
            named.append(matching[0])
        return tuple(named)


def _docstring_symbols(frame, expected) -> _Symbols:
    """The symbols of the docstrings of the layer's ``forward`` and ``backward`` (``x: (N, D_in) -> y: (N,
    D_out)``), sized by the arrays the call was given; a symbol given two sizes is dropped."""
    found = _Symbols()
    layer = frame.f_locals.get("self")
    if layer is None or expected is None:
        return found
    text = " ".join(inspect.getdoc(getattr(type(layer), method, None)) or "" for method in ("forward", "backward"))
    clashes = set()
    for name, inside in _SHAPE_IN_DOCSTRING.findall(text):
        symbols = tuple(part.strip() for part in inside.split(","))
        shape = expected.shapes.get(_SIZED_BY[name])
        if shape is None or len(shape) != len(symbols) or not all(s.isidentifier() for s in symbols):
            continue
        found.shapes.setdefault(name, symbols)
        for symbol, size in zip(symbols, shape):
            if found.sizes.setdefault(symbol, int(size)) != int(size):
                clashes.add(symbol)
    for symbol in clashes:
        del found.sizes[symbol]
    return found


def _product(line: _Line, left_node, symbol: str, right_node, left, right, must: _Must) -> str:
    """``a @ b`` (or ``numpy.dot(a, b)``: ``symbol`` ``numpy.dot(@)``) whose inner sizes differ: the shapes, the
    sizes that do not meet, and the product that fits."""
    a, b = line.text(left_node), line.text(right_node)
    written = _written_as(symbol)
    inner_left = left.shape[-1] if left.ndim else None
    inner_right = (right.shape[-2] if right.ndim >= 2 else right.shape[0]) if right.ndim else None
    rows = "rows" if right.ndim >= 2 else "entries"
    said = f"`{written(a, b)}` is {_shape(left.shape)} @ {_shape(right.shape)}"
    if inner_left is not None and inner_right is not None and inner_left != inner_right:
        said += f", and the {inner_left} columns of {a} do not meet the {inner_right} {rows} of {b}"
    fit = _product_that_fits(line, left_node, right_node, left, right, must, written)
    return said + (f"; {fit}" if fit else "")


def _written_as(symbol: str):
    """How the learner wrote a product: ``a @ b``, or ``numpy.dot(a, b)`` for the symbol ``numpy.dot(@)``."""
    if symbol == "@":
        return lambda a, b: f"{a} @ {b}"
    return lambda a, b: f"{symbol.removesuffix('(@)')}({a}, {b})"


def _product_that_fits(line: _Line, left_node, right_node, left, right, must: _Must, written) -> str:
    """The product written with one factor transposed, or the two swapped, that gives the shape required."""
    if not must.known or left.ndim != 2 or right.ndim != 2:
        return ""
    a, b = (_operand(line, left_node), left), (_operand(line, right_node), right)
    turned_a, turned_b = (_transposed(a[0]), left.T), (_transposed(b[0]), right.T)
    candidates = [(a, turned_b), (turned_a, b), (turned_b, a), (b, turned_a), (turned_b, turned_a),
                  (turned_a, turned_b), (b, a)]  # one factor transposed first, then the two swapped
    for (first, x), (second, y) in candidates:
        if x.shape[1] == y.shape[0] and (x.shape[0], y.shape[1]) == tuple(must.shape):
            return (f"`{written(first, second)}` would be {_shape(x.shape)} @ {_shape(y.shape)} = "
                    f"{_shape(tuple(must.shape))}")
    return ""


def _operand(line: _Line, node) -> str:
    text = line.text(node)
    simple = isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call))
    return text if simple else f"({text})"


def _transposed(text: str) -> str:
    return text[:-2] if text.endswith(".T") else f"{text}.T"


def _elementwise(line: _Line, left_node, sign: str, right_node, left, right) -> str:
    """``a * b`` (or ``a += b``) of shapes that do not broadcast, or whose result does not fit in ``a``."""
    a, b = line.text(left_node), line.text(right_node)
    said = f"`{a} {sign} {b}` is {_shape(left.shape)} {sign} {_shape(right.shape)}"
    for axis in range(1, min(left.ndim, right.ndim) + 1):
        m, n = left.shape[-axis], right.shape[-axis]
        if m != n and m != 1 and n != 1:
            return (said + f": elementwise, shapes must match axis by axis from the right (or be 1 there), and {m} "
                           f"does not match {n}")
    if sign.endswith("=") and sign not in ("==", "!=", "<=", ">="):
        together = numpy.broadcast_shapes(left.shape, right.shape)
        if together != left.shape:
            return said + f": the result would be {_shape(together)}, which does not fit in {a}"
    return said


def _arrays_in(line: _Line, node) -> list[tuple[str, str]]:
    """(text, shape) of every array among the names, attributes and subscripts of ``node``, each once, outermost
    first: ``self.W.data[:, :, p, q]`` is named, not also ``self.W.data``."""
    found, seen, inside = [], set(), set()
    for part in ast.walk(node):
        if id(part) in inside or not isinstance(part, (ast.Name, ast.Attribute, ast.Subscript)):
            continue
        text = line.text(part)
        try:
            value = line.value(part)
        except _Unreadable:
            continue
        if _is_array(value):
            inside.update(id(child) for child in ast.walk(part))
            if text not in seen:
                seen.add(text)
                found.append((text, _shape(value.shape)))
    return found


def _is_array(value) -> bool:
    """An array of any library: it has a tuple ``shape`` (the module ``numpy`` has a function of that name)."""
    return isinstance(getattr(value, "shape", None), tuple) and hasattr(value, "dtype")


def _shape(shape) -> str:
    return str(tuple(int(size) for size in shape))


# ---------------------------------------------------------------------------------------------------------------
# A convolution's dL/dx that is right for the kernel turned by 180 degrees

#: A flip written in a backward: ``[::-1]``, ``numpy.flip``, ``rot90``, or an index read backwards (``k - 1 - p``).
_FLIP_IN_SOURCE = re.compile(r"::\s*-1|\bflip|rot90|-\s*1\s*-\s*\w|-\s*\w+\s*-\s*1\b")


def kernel_turned(layer, named, x, dx, upstream, tolerance: float, h: float = 1e-5) -> str:
    """"the kernel is not flipped" when ``dx`` is the right dL/dx for ``layer`` with its kernel turned by 180 degrees
    (and "flipped once too often" when the backward's source flips it already); else "".

    Written as a full convolution of dy, a convolution's input gradient takes the kernel flipped in every spatial
    axis, and forgetting the flip gives exactly the input gradient that the same layer would have with its kernel
    turned. Written as the forward's loop over the kernel's positions (p, q), it takes ``W[:, :, p, q]`` as it is,
    and a flip there turns it the same way. A kernel is a parameter of ``named`` (``(path, parameter)`` pairs of a
    float64 layer) with 3 axes or more: (C_out, C_in, K, K), the last ones spatial.
    """
    for path, parameter in named:
        kernel = parameter.data
        if kernel.ndim < 3:
            continue
        spatial_axes_reversed = (slice(None),) * 2 + (slice(None, None, -1),) * (kernel.ndim - 2)
        parameter.data = numpy.ascontiguousarray(kernel[spatial_axes_reversed])
        try:
            turned = compare("x", lambda _: layer.forward(x), x, dx, upstream, rng=0, h=h).passed(tolerance)
        except Exception:  # a forward that fails on another kernel tells nothing about the flip
            turned = False
        finally:
            parameter.data = kernel
        if not turned:
            continue
        spatial = ", ".join([":", ":"] + ["::-1"] * (kernel.ndim - 2))
        same = f"your dL/dx is the right one for the kernel {path}[{spatial}] (turned by 180 degrees)"
        if _FLIP_IN_SOURCE.search(_source(type(layer).backward)):
            return (f"the kernel is flipped once too often: {same}; in a loop over the kernel's positions (p, q), as "
                    f"the forward pass makes, dL/dx takes {path}[:, :, p, q] as it is")
        return f"the kernel is not flipped: {same}; dL/dx is a full convolution of dy with the flipped kernel"
    return ""


def _source(function) -> str:
    """The code of ``function`` without its docstring and comments (whose words may say "flip"), or ""."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                                             ast.Constant):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


# ---------------------------------------------------------------------------------------------------------------
# Evaluating a part of the learner's line again, safely


class _Unreadable(Exception):
    """A part of the line that is not evaluated again (a call of the learner's own, an assignment...)."""


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod,
              ast.MatMult: operator.matmul}


def _evaluate(node, local: dict, global_: dict):
    """The value of ``node`` from the frame's variables: names, attributes, subscripts with plain indices,
    arithmetic and calls of NumPy's own functions or array methods, nothing else (no code of the learner's runs)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in local:
            return local[node.id]
        if node.id in global_:
            return global_[node.id]
        raise _Unreadable(node.id)
    if isinstance(node, ast.Attribute):
        return _attribute(_evaluate(node.value, local, global_), node.attr)
    if isinstance(node, ast.Subscript):
        owner = _evaluate(node.value, local, global_)
        if not (_numpy(owner) or isinstance(owner, (list, tuple, dict))):
            raise _Unreadable("a subscript")  # a __getitem__ of the learner's
        return _safely(operator.getitem, owner, _evaluate(node.slice, local, global_))
    if isinstance(node, ast.Slice):
        return slice(*(None if part is None else _evaluate(part, local, global_)
                       for part in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(item, local, global_) for item in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _safely(operator.neg, _number(_evaluate(node.operand, local, global_)))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _safely(_OPERATORS[type(node.op)], _number(_evaluate(node.left, local, global_)),
                       _number(_evaluate(node.right, local, global_)))
    if isinstance(node, ast.Call):
        function = _evaluate(node.func, local, global_)
        if not _numpy(function):
            raise _Unreadable("a call")
        arguments = [_evaluate(argument, local, global_) for argument in node.args]
        options = {keyword.arg: _evaluate(keyword.value, local, global_) for keyword in node.keywords if keyword.arg}
        return _safely(function, *arguments, **options)
    raise _Unreadable(type(node).__name__)


def _attribute(owner, name: str):
    """``owner.name`` where reading it runs no code of the learner's: an array's attribute, a module's, an instance's
    own (``self.W``), or a property of this library's (``Parameter.shape``)."""
    if _numpy(owner) or inspect.ismodule(owner):
        try:
            return getattr(owner, name)
        except AttributeError:
            raise _Unreadable(name) from None
    if name in getattr(owner, "__dict__", {}):
        return vars(owner)[name]
    found = inspect.getattr_static(owner, name, None)
    module = getattr(getattr(found, "fget", None), "__module__", None) or ""
    if isinstance(found, property) and (module == "scratchae" or module.startswith("scratchae.")):
        return _safely(getattr, owner, name)
    raise _Unreadable(name)


def _number(value):
    """``value`` if arithmetic on it runs no code of the learner's (an array, a NumPy or Python number)."""
    if _numpy(value) or isinstance(value, (int, float, complex)):
        return value
    raise _Unreadable("arithmetic on an object")


def _numpy(value) -> bool:
    """NumPy's own: an array, a NumPy function, or a method bound to an array."""
    if isinstance(value, (numpy.ndarray, numpy.generic)):
        return True
    if isinstance(getattr(value, "__self__", None), numpy.ndarray):
        return True
    return (getattr(value, "__module__", None) or "").startswith("numpy") or isinstance(value, numpy.ufunc)


def _safely(function, *arguments, **options):
    try:
        return function(*arguments, **options)
    except Exception:
        raise _Unreadable("it fails") from None
