"""The ``scratchae`` command (also ``python -m scratchae``).

    scratchae train --model simple --data mnist-5k --epochs 20 --out runs/simple
    scratchae evaluate runs/simple/model.npz --data mnist-5k
    scratchae gradcheck
    scratchae gradcheck --layer my_layers.py:LeakyReLU(0.1) --input-shape 4,10
    scratchae exercises start my-exercises
    scratchae demo --quick
    scratchae notebooks notebooks
    scratchae explore runs/vae
    scratchae train --normal-class 3 --out runs/threes && scratchae anomaly runs/threes

A wrong argument ends the command with status 2 and a one-line message; a failed gradient check with status 1; a
training stopped by a signal, its state saved, with 128 + the signal's number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).

The command is the application around the lesson: ``runs`` trains and evaluates into a run folder, ``demo`` runs
the demo chapters, ``notebooks`` writes them as Jupyter notebooks, ``gallery`` writes the page of their figures,
``explore`` the page that walks through a 2-d latent space in the browser, ``arguments`` holds the argument types.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

from scratchae import checkpoint, data, gradcheck, gradcheck_suite, learner_files
from scratchae.anomaly import AnomalyError
from scratchae.backend import DeviceError
from scratchae.cli.anomaly import add_anomaly_command
from scratchae.cli.arguments import count, shape
from scratchae.cli.demo import add_demo_command
from scratchae.cli.notebooks import add_notebooks_command
from scratchae.cli.explore import add_explore_command
from scratchae.cli.exercises import add_exercises_command
from scratchae.cli.train import RunError, RunInterrupted, add_evaluate_command, add_train_command
from scratchae.threads import blas_threads, chosen
from scratchae.training import TrainingDiverged

#: The most memory ``gradcheck --layer`` may need: its check holds up to GRADCHECK_COPIES float64 copies of the input
#: at its peak (about 16 measured for ReLU and Sigmoid), so an input of more than GRADCHECK_BYTES / (8 *
#: GRADCHECK_COPIES) numbers is refused before anything is allocated.
GRADCHECK_BYTES = 2**30
GRADCHECK_COPIES = 20

#: Errors that mean "the user asked for something that cannot be done": a message, exit status 2. Every OSError is
#: one (a folder that cannot be written, a disk that is full, a file that is missing).
USER_ERRORS = (data.DataError, checkpoint.CheckpointError, DeviceError, RunError, learner_files.OwnCodeError, OSError,
               AnomalyError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (not the usage block) before exiting with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        # every core trains and NumPy's BLAS runs one thread otherwise, unless --threads says another count
        with chosen(getattr(arguments, "threads", None)), blas_threads():
            return arguments.run(arguments)
    except USER_ERRORS as error:
        print(f"scratchae: error: {_message(error)}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"scratchae: training stopped: {error}", file=sys.stderr)
        return 1
    except RunInterrupted as stopped:  # its state is saved; a terminal that is gone (SIGHUP) cannot be told
        with contextlib.suppress(OSError, ValueError):
            print(f"scratchae: {stopped}", file=sys.stderr)
        return stopped.status
    except MemoryError:
        print("scratchae: error: not enough memory for this model and data (try smaller sizes or a smaller "
              "--batch-size)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before or after the training, which saves its own state
        print("scratchae: interrupted", file=sys.stderr)
        return 130


def _message(error: Exception) -> str:
    """The whole message of an error (a data set that is not found says where it looked and what to do), without
    NumPy's advice to load untrusted files with pickles."""
    if isinstance(error, FileExistsError) and error.filename:  # a folder was to be made where a file is
        return f"{error.filename} is a file, not a folder; give a folder"
    if isinstance(error, OSError) and error.strerror and error.filename and not str(error).startswith("--out"):
        return f"{error.filename}: {error.strerror}"
    text = str(error) or type(error).__name__
    kept = "\n".join(line for line in text.splitlines() if "allow_pickle" not in line)
    return kept or text  # a message that is only NumPy's advice is kept as it is, never left empty


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchae", description="Autoencoders from scratch on NumPy and CuPy.")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)
    add_train_command(commands)
    add_evaluate_command(commands)
    check = commands.add_parser("gradcheck", help="check every hand-written gradient against numerical ones, or "
                                                  "those of your own layer (--layer)")
    check.add_argument("--seed", type=count(0), default=0)
    check.add_argument("--layer", metavar="FILE.py:CLASS", default=None,
                       help="check your own layer instead, e.g. 'my_layers.py:LeakyReLU(0.1)' (arguments: plain "
                            "values)")
    check.add_argument("--input-shape", type=shape, default=None, metavar="N,D",
                       help="the shape of the layer's input (default 4,D_in for a layer with in_features, else 4,10); "
                            f"at most {GRADCHECK_BYTES // (8 * GRADCHECK_COPIES):,} numbers, as the check holds up to "
                            f"{GRADCHECK_COPIES} float64 copies of it and stays within {GRADCHECK_BYTES // 2**30} GiB")
    check.set_defaults(run=run_gradcheck)
    add_demo_command(commands)
    add_notebooks_command(commands)
    add_explore_command(commands)
    add_anomaly_command(commands)
    add_exercises_command(commands)
    return parser


def run_gradcheck(arguments) -> int:
    """Print the table of :func:`scratchae.gradcheck.check_everything`, or of :func:`scratchae.gradcheck.check_layer`
    on the reader's own layer; status 1 if a gradient is wrong."""
    if arguments.layer is not None:
        _refuse_inputs_too_large(arguments.input_shape)
        report = gradcheck.check_layer(learner_files.build(arguments.layer), input_shape=arguments.input_shape,
                                       seed=arguments.seed)
        print(report)
        return 0 if report.passed else 1
    if arguments.input_shape is not None:
        raise learner_files.OwnCodeError("--input-shape goes with --layer")
    cases = gradcheck_suite.check_everything(arguments.seed)
    print(gradcheck_suite.format_report(cases))
    passed = sum(case.passed for case in cases)
    return 0 if passed == len(cases) > 0 else 1  # a suite that checked nothing has not passed


def _refuse_inputs_too_large(input_shape) -> None:
    """Refuse, before anything is allocated, an input whose check would need more than GRADCHECK_BYTES."""
    if input_shape is None:
        return
    numbers = math.prod(input_shape)
    if numbers * 8 * GRADCHECK_COPIES > GRADCHECK_BYTES:
        raise learner_files.OwnCodeError(
            f"--input-shape {','.join(map(str, input_shape))} has {numbers:,} numbers; the check holds up to "
            f"{GRADCHECK_COPIES} float64 copies of its input, and stays within {GRADCHECK_BYTES // 2**30} GiB: give "
            f"at most {GRADCHECK_BYTES // (8 * GRADCHECK_COPIES):,} numbers (a few rows are enough to check a layer)")


if __name__ == "__main__":
    sys.exit(main())
