"""``scratchae exercises``: write the backward passes yourself, then have them checked.

    scratchae exercises list                    the exercises, in the lesson's reading order
    scratchae exercises start DIR               write one file per exercise into DIR (never overwriting one)
    scratchae exercises check DIR [NAME ...]    check them: one line each; status 0 only when all are right

Each check runs in a child process with a time limit (``--timeout``, 5 s by default), so that a file that exits,
raises ``BaseException``, loops forever or crashes is a "wrong" verdict. Verdicts print as they come; Ctrl-C keeps
those printed and ends with status 130.
"""

from __future__ import annotations

import shlex
import sys

from scratchae import exercises
from scratchae.cli.arguments import bounded_float, path_name
from scratchae.exercises.sandbox import DEFAULT_TIMEOUT, LONGEST_TIMEOUT


def add_exercises_command(commands) -> None:
    """Register ``scratchae exercises`` and its three sub-commands."""
    command = commands.add_parser("exercises", help="write the backward passes yourself and have them checked",
                                  description="Exercises in the lesson's reading order: each file leaves a "
                                              "backward pass (or an update) for you to write.")
    actions = command.add_subparsers(title="actions", required=True, parser_class=type(command))
    listing = actions.add_parser("list", help="list the exercises")
    listing.set_defaults(run=run_list)
    start = actions.add_parser("start", help="write the exercise files into DIR (existing files are kept)")
    start.add_argument("folder", metavar="DIR", type=path_name)
    start.set_defaults(run=run_start)
    check = actions.add_parser("check", help="check the exercises in DIR (all, or those named)")
    check.add_argument("folder", metavar="DIR", type=path_name)
    check.add_argument("names", nargs="*", metavar="NAME", help=f"among: {', '.join(exercises.names())}")
    check.add_argument("--timeout", type=bounded_float(above=0.0, below=LONGEST_TIMEOUT), default=DEFAULT_TIMEOUT,
                       metavar="SECONDS",
                       help="how long each exercise's check may run before it is stopped and judged wrong "
                            f"(default: {DEFAULT_TIMEOUT:g})")
    check.set_defaults(run=run_check)


def run_list(arguments) -> int:
    for number, exercise in enumerate(exercises.EXERCISES, start=1):
        print(f"{number:>3}  {exercise.name:<24}{exercise.file:<30}{exercise.title}")
    return 0


def run_start(arguments) -> int:
    written, kept = exercises.start(arguments.folder)
    n_exercises = sum(path.name not in exercises.TEST_FILES for path in written)
    print(f"wrote {n_exercises} exercise files and {len(written) - n_exercises} test files into {arguments.folder}"
          + (f"; kept {len(kept)} files already there" if kept else ""))
    print(f"next: open {exercises.EXERCISES[0].file}, write the backward pass, then run "
          f"`scratchae exercises check {shlex.quote(arguments.folder)}` (or `pytest {shlex.quote(arguments.folder)}`)")
    return 0


def run_check(arguments) -> int:
    """One line per exercise as its check ends; status 0 only when every exercise asked for is right, 130 on
    Ctrl-C (after the lines reached)."""
    asked = exercises.find(arguments.names)
    numbers = {exercise.name: number for number, exercise in enumerate(exercises.EXERCISES, start=1)}
    checks = exercises.check_each(arguments.folder, arguments.names, timeout=arguments.timeout)
    results = []
    try:
        for exercise, result in checks:
            if not results:
                print(f"exercises in {arguments.folder}:", flush=True)
            verdict = result.status + (f": {result.detail}" if result.detail else "")
            print(f"{numbers[exercise.name]:>3}  {exercise.name:<24}{verdict}", flush=True)
            results.append(result)
    except KeyboardInterrupt:
        stopped = asked[len(results)].name if len(results) < len(asked) else "the end"
        right = sum(result.right for result in results)
        print(f"scratchae: interrupted while checking {stopped}: {len(results)} of {len(asked)} checked, {right} "
              f"right", file=sys.stderr)
        return 130
    right = sum(result.right for result in results)
    print(f"{right} of {len(results)} right")
    return 0 if right == len(results) == len(asked) else 1
