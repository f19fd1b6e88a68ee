"""Start-up cost of the command line: CPU seconds of `reengage --help` and friends.

    python bench/startup.py [--runs 7]

Runs each command in a fresh process several times and prints the median CPU time (user
plus system, of the child alone) beside two baselines measured in the same run: a bare
`python -c pass` and `import reengage.cli`. `doctor --help` reads the settings and sets
up logging as every command does before its own work. Aim: `reengage --help` and the
start of `reengage doctor` under 0.3 s of CPU.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import reengage.cli": [sys.executable, "-c", "import reengage.cli"],
    "reengage --help": [sys.executable, "-m", "reengage", "--help"],
    "reengage doctor --help": [sys.executable, "-m", "reengage", "doctor", "--help"],
}


def cpu_seconds(argv: list[str]) -> float:
    """CPU time (user + system) one run of ``argv`` took, in a fresh child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Measure every command ``--runs`` times, interleaved, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median shown)")
    args = parser.parse_args()
    for argv in COMMANDS.values():  # warm the bytecode and file caches once
        cpu_seconds(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every command alike
        for name, argv in COMMANDS.items():
            times[name].append(cpu_seconds(argv))
    print(f"median CPU seconds over {args.runs} runs (user + system)")
    for name, found in times.items():
        print(f"  {name:<24} {statistics.median(found):6.3f}  (min {min(found):.3f})")


if __name__ == "__main__":
    main()
