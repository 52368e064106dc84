"""Print (or, with --write, rewrite in dvc.yaml) each stage's code deps: its script and every blat_core module
it imports (`blat_core.stage_code`). Run it after moving code between modules; tests/test_stage_deps.py fails
until dvc.yaml agrees.

    python scripts/code_deps.py            # show the stages whose code deps differ
    python scripts/code_deps.py --write    # rewrite them (data deps, params and the rest are kept)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blat_core.stage_code import code_deps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^(\s*)- ((?:blat_core|stages)/\S*)\s*$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    path = ROOT / "dvc.yaml"
    stages = yaml.safe_load(path.read_text())["stages"]
    wanted = {name: code_deps(s.get("do", s)["cmd"]) for name, s in stages.items()}
    lines, out, stage, changed = path.read_text().splitlines(keepends=True), [], None, []
    i = 0
    while i < len(lines):
        line = lines[i]
        if match := re.match(r"^  ([a-z_0-9]+):\s*$", line):
            stage = match.group(1)
        code = CODE.match(line)
        if code and stage in wanted:
            block = []
            while i < len(lines) and (m := CODE.match(lines[i])):
                block.append(m.group(2))
                i += 1
            if block != wanted[stage]:
                changed.append(stage)
            out += [f"{code.group(1)}- {dep}\n" for dep in wanted[stage]]
            continue
        out.append(line)
        i += 1
    for name in changed:
        print(f"{name}: {' '.join(wanted[name])}")
    if args.write and changed:
        path.write_text("".join(out))
        print(f"rewrote the code deps of {len(changed)} stages in {path}")


if __name__ == "__main__":
    main()
