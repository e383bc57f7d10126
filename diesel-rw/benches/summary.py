#!/usr/bin/env python3
"""Tables for BENCHMARKS.md from the last `cargo bench` run.

    cargo bench -p diesel-rw --features sqlite,postgres,async 2>&1 | tee bench.log
    python3 diesel-rw/benches/summary.py [--log bench.log] [target/criterion]

1. The criterion medians: each diesel-rw line next to its hand-written baseline (the line of the
   same group whose id starts with `raw` or `by_hand`, matched by the part after `/`), with the
   difference and the ratio.
2. With --log: the paired comparisons the benches print (`paired ...` lines).
"""
import json
import pathlib
import re
import sys

args = sys.argv[1:]
log = None
if "--log" in args:
    i = args.index("--log")
    log = args[i + 1]
    del args[i : i + 2]
root = pathlib.Path(args[0] if args else "target/criterion")

groups = {}
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())["median"]
    groups.setdefault(meta["group_id"], {})[meta["function_id"]] = est["point_estimate"]


def fmt(ns):
    if ns >= 10_000:
        return f"{ns / 1000:.2f} µs"
    if ns >= 1_000:
        return f"{ns / 1000:.3f} µs"
    return f"{ns:.1f} ns"


def tail(fid):
    return fid.split("/", 1)[1] if "/" in fid else ""


def is_base(fid):
    return fid.startswith("raw") or fid.startswith("by_hand")


print("| group | diesel-rw | median | baseline | median | difference | ratio |")
print("|---|---|---:|---|---:|---:|---:|")
for group, fns in groups.items():
    raws = {f: v for f, v in fns.items() if is_base(f)}
    for fid, med in fns.items():
        if fid in raws:
            continue
        base = [r for r in raws if tail(r) and tail(fid).startswith(tail(r))]
        if not base and len(raws) == 1:
            base = list(raws)
        if not base:
            print(f"| {group} | {fid} | {fmt(med)} | | | | |")
            continue
        b = max(base, key=lambda r: len(tail(r)))
        bmed = raws[b]
        print(f"| {group} | {fid} | {fmt(med)} | {b} | {fmt(bmed)} | {med - bmed:+.0f} ns | {med / bmed:.3f} |")

if log:
    pat = re.compile(
        r"^paired (\S+): (\d+) pairs; median (\S+) (.+?), (\S+) (.+?); .* = (-?\d+) ns; ratio \S+ ([\d.]+)(?:; p10 \S+ (.+?), \S+ (.+?), ratio ([\d.]+))?"
    )
    print()
    print("| paired comparison | pairs | baseline | median | diesel-rw | median | median pair difference | ratio | p10 ratio |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|")
    for line in open(log, encoding="utf-8", errors="replace"):
        m = pat.match(line.strip())
        if m:
            name, n, a, ma, b, mb, d, r, _, _, r10 = m.groups()
            print(f"| {name} | {n} | {a} | {ma} | {b} | {mb} | {int(d):+d} ns | {r} | {r10 or ''} |")
