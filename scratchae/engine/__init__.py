"""The engine floor: the fast forms that the command, the demos and the benchmarks train with."""
