#!/usr/bin/env python3
"""The markdown table of a bench/gpu_variants.sh call: one row per model and shape, one column per
build with every round's median (ms), and each build's speed-up: the reference build's best round
over its own.

    python3 bench/variants_table.py $OUT/variants.txt [--reference ds2rt-base]

variants.txt lines: `round R ARCH PRECISION BxS BUILD MS` (MS is `failed` where a run failed).
"""
import argparse
import collections
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants")
    ap.add_argument("--reference", help="the build the others are compared with (default: the first listed)")
    args = ap.parse_args()

    times = collections.defaultdict(list)  # (arch, precision, shape, build) -> ms per round
    builds, rows = [], []
    for number, line in enumerate(open(args.variants, encoding="utf-8"), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 7 or fields[0] != "round":
            sys.exit(f"{args.variants}:{number}: not a `round R ARCH PRECISION BxS BUILD MS` line: {line.strip()}")
        _, _, arch, precision, shape, build, ms = fields
        if build not in builds:
            builds.append(build)
        if (arch, precision, shape) not in rows:
            rows.append((arch, precision, shape))
        times[(arch, precision, shape, build)].append(None if ms == "failed" else float(ms))
    if not builds:
        sys.exit(f"{args.variants}: no rounds")
    reference = args.reference or builds[0]
    if reference not in builds:
        sys.exit(f"--reference {reference}: not among the builds ({', '.join(builds)})")

    def best(key):
        measured = [t for t in times.get(key, []) if t is not None]
        return min(measured) if measured else None

    others = [b for b in builds if b != reference]
    print("| model | precision | batch x s | " + " | ".join(f"{b} ms" for b in builds) + " | " +
          " | ".join(f"{b} speed-up" for b in others) + " |")
    print("|---" * (3 + len(builds) + len(others)) + "|")
    for arch, precision, shape in rows:
        cells = []
        for b in builds:
            cells.append(" / ".join("failed" if t is None else f"{t:.2f}" for t in times.get((arch, precision, shape, b), [])))
        ref = best((arch, precision, shape, reference))
        for b in others:
            mine = best((arch, precision, shape, b))
            cells.append(f"{ref / mine:.3f}x" if ref and mine else "")
        print(f"| {arch} | {precision} | {shape.replace('x', ' x ')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
