"""systemd's exposure score of each unit in systemd/ (0 = locked down, 10 = fully exposed), and
what still counts against it; offline, on the files, so it runs without systemd as PID 1.

    .venv/bin/python bench/systemd_security.py
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

UNITS = Path(__file__).resolve().parents[1] / "systemd"
# A ✗ line: the setting, what it means, and its weight in the score.
FAILED = re.compile(r"^✗ (\S+)\s+(.*?)\s+(\d+\.\d+)$")


def main() -> None:
    print("| unit | exposure | largest remaining items (weight) |\n| --- | --- | --- |")
    for unit in sorted(UNITS.glob("*.service")):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
            capture_output=True,
            text=True,
            check=False,
        )
        score = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", result.stdout)
        failed = [FAILED.match(line.strip()) for line in result.stdout.splitlines()]
        weights = sorted(
            ((float(m.group(3)), m.group(1)) for m in failed if m and float(m.group(3)) > 0),
            reverse=True,
        )
        top = ", ".join(f"{name} ({weight:.1f})" for weight, name in weights[:3]).replace(
            "|", "\\|"
        )
        level = f"{score.group(1)} {score.group(2)}" if score else "n/a"
        print(f"| {unit.name} | {level} | {top} |")


if __name__ == "__main__":
    main()
