"""Write the README's settings table from the settings block (experiments/settings.py).

    python tools/settings_table.py          # rewrite the table in README.md
    python tools/settings_table.py --check  # exit 1 when README.md's table is stale

The table sits between the two SETTINGS markers in README.md; ``settings.settings_table``
builds it from each setting's flag, default, help and the presets, so a new setting reaches
the README by running this command.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SETTINGS_MODULE = REPO / "solution" / "section2" / "src" / "experiments" / "settings.py"
BEGIN = "<!-- SETTINGS: written by tools/settings_table.py from experiments/settings.py -->\n"
END = "<!-- END SETTINGS -->\n"


def generated_table() -> str:
    """The settings table of the solution's settings block, in Markdown."""
    spec = importlib.util.spec_from_file_location("kit_settings", SETTINGS_MODULE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module.settings_table()


def readme_with_table(text: str, table: str) -> str:
    """``text`` (README.md) with the part between the markers replaced by ``table``.

    Raises:
        ValueError: when README.md lacks either marker.
    """
    if BEGIN not in text or END not in text:
        raise ValueError(f"{README} lacks the markers {BEGIN.strip()} and {END.strip()}")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + table + END + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    """Rewrite or check README.md's settings table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether README.md's table is up to date "
                             "(default: False)")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    updated = readme_with_table(text, generated_table())
    if args.check:
        if updated != text:
            print(f"{README}: the settings table is stale; run python tools/settings_table.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
