"""The ``scratchae`` command (also ``python -m scratchae``).

    scratchae train --model simple --data mnist-5k --epochs 20 --out runs/simple
    scratchae evaluate runs/simple/model.npz --data mnist-5k
    scratchae gradcheck
    scratchae demo --quick

A wrong argument ends the command with status 2 and a one-line message; a failed gradient check with status 1.

The command is the application around the lesson: ``runs`` trains and evaluates into a run folder, ``demo`` runs
the demo chapters, ``gallery`` writes the page of their figures, ``arguments`` holds the argument types.
"""

from __future__ import annotations

import argparse
import sys

from scratchae import checkpoint, data, gradcheck
from scratchae.backend import DeviceError
from scratchae.cli.demo import add_demo_command
from scratchae.cli.runs import add_evaluate_command, add_train_command
from scratchae.training import TrainingDiverged

#: Errors that mean "the user asked for something that cannot be done": one line, exit status 2.
USER_ERRORS = (data.DataError, checkpoint.CheckpointError, DeviceError, FileNotFoundError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (not the usage block) before exiting with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except USER_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"scratchae: error: {message}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"scratchae: training stopped: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchae", description="Autoencoders from scratch on NumPy and CuPy.")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)
    add_train_command(commands)
    add_evaluate_command(commands)
    check = commands.add_parser("gradcheck", help="check every hand-written gradient against numerical ones")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=run_gradcheck)
    add_demo_command(commands)
    return parser


def run_gradcheck(arguments) -> int:
    """Print the table of :func:`scratchae.gradcheck.check_everything`; status 1 if a gradient is wrong."""
    cases = gradcheck.check_everything(arguments.seed)
    print(gradcheck.format_report(cases))
    return 0 if all(case.passed for case in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
