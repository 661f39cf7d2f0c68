"""Write every mutant as a submission folder, or list them.

    python -m grader.mutants DEST           # DEST/<name>/section2/src, one folder per mutant
    python -m grader.mutants DEST --solution  # also DEST/solution/, the unchanged solution
    python -m grader.mutants --list         # name, TASK and mistake of each mutant

Grade the folders with ``python -m grader.batch.grade_all DEST``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.mutants import MUTANTS, build_mutant, copy_solution

SOLUTION_FOLDER = "solution"  # name of the unchanged copy written by --solution


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, nargs="?", default=None,
                        help="folder to receive one sub-folder per mutant; it must not hold "
                             "those sub-folders yet (default: None, required unless --list)")
    parser.add_argument("--solution", action="store_true",
                        help=f"also write the unchanged solution as DEST/{SOLUTION_FOLDER}/, "
                             "the baseline to compare with (default: False)")
    parser.add_argument("--list", action="store_true",
                        help="print every mutant and write nothing (default: False)")
    args = parser.parse_args(argv)
    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:<24}{mutant.task:<8}{mutant.file:<40}{mutant.mistake}")
        return 0
    if args.dest is None:
        parser.error("give DEST, the folder to write the mutants into (or --list)")
    for mutant in MUTANTS:
        build_mutant(mutant, args.dest / mutant.name)
    if args.solution:
        copy_solution(args.dest / SOLUTION_FOLDER)
    print(f"wrote {len(MUTANTS)} mutants{' and the solution' if args.solution else ''} "
          f"to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
