"""The engine: drop-in forms of the lesson's layers and optimizer that compute the same numbers faster.

The lesson (:mod:`scratchae.layers`, :mod:`scratchae.conv`, :mod:`scratchae.optim`) is what a learner steps through:
each layer in its simplest correct form. The engine keeps its speed tricks here, each form a subclass of the lesson
class it replaces, with the same constructor, weights, configuration and checkpoint entries, tested equal to it in
float64 (``tests/test_engine.py``). ``fast=True`` on a builder or on ``checkpoint.load``, or
:func:`scratchae.engine.forms.fast` on a model, puts them in; the command, the demos and the benchmarks use them.
"""
