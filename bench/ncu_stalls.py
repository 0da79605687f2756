#!/usr/bin/env python3
"""Where a kernel's warps stall, instruction by instruction, from Nsight Compute's source page.

On the GPU machine (bench/gpu_profile.sh with NCU=1 runs it):
    ncu -k regex:mmaKernelImpl --launch-count 1 --section SourceCounters --section WarpStateStats \
        --page source --csv --print-source sass .gpu/bin/ds2rt bench ... --no-graphs > ncu_source.csv
Here:
    python3 bench/ncu_stalls.py ncu_source.csv             # the stall reasons of the whole kernel
    python3 bench/ncu_stalls.py ncu_source.csv --listing   # every SASS line with its samples
    python3 bench/ncu_stalls.py ncu_source.csv --from 911 --to 1076   # one stretch (listing indices)
"""
import argparse
import csv
import sys


def load(path):
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"Address"')), None)
    if start is None:
        sys.exit(f"{path}: no source table (ncu's --page source --csv output starts with \"Address\",...)")
    rows = list(csv.reader(lines[start:]))
    header, rows = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    return header, rows


def number(text):
    try:
        return int(float(text))
    except ValueError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--listing", action="store_true", help="print every instruction with its samples")
    ap.add_argument("--from", dest="first", type=int, default=0, help="first listing index of the stretch")
    ap.add_argument("--to", dest="last", type=int, default=None, help="listing index past the stretch")
    args = ap.parse_args()

    header, rows = load(args.csv)
    col = {name: i for i, name in enumerate(header)}
    stalls = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    stretch = rows[args.first:args.last]
    samples = [number(r[col["# Samples"]]) for r in stretch]
    total = sum(samples)
    print(f"{len(stretch)} instructions, {total} samples")
    if not total:
        return
    reasons = {h[len("stall_"):]: sum(number(r[col[h]]) for r in stretch) for h in stalls}
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {reason:<20} {count:>8} {100.0 * count / total:5.1f}%")
    if args.listing or args.last is not None:
        for index, (r, s) in enumerate(zip(stretch, samples), start=args.first):
            top = sorted(((number(r[col[h]]), h[len("stall_"):]) for h in stalls), reverse=True)[:3]
            why = " ".join(f"{name}:{count}" for count, name in top if count)
            print(f"{index:5d} {r[col['Source']].strip()[:64]:<64} {s:>6} {r[col['Instructions Executed']]:>9} {why}")


if __name__ == "__main__":
    main()
