"""``python -m scratchae`` and the ``scratchae`` command: :func:`scratchae.cli.main`, loaded so that a Ctrl-C while
the command loads (a fifth of a second) ends it with one line, as a Ctrl-C later does, not with a traceback."""

import sys


def run() -> int:
    try:
        from scratchae.cli import main
    except KeyboardInterrupt:
        print("scratchae: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
