#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/footprint.py MAPS TOP WINDOW...: what one round trip touches in user space.

Each WINDOW is a valgrind lackey trace (--trace-mem=yes) of one ping's round trip through the
answering daemon; MAPS is that valgrind process's /proc/PID/maps, to name the objects and
functions. Prints, for the median window: instructions run, distinct 64-byte lines of code and
of data, distinct 4 KiB pages, then per object and the TOP functions by instructions (static
functions too, where the object has a symbol table; otherwise the nearest exported symbol).
Called by bench/footprint.sh.
"""
import bisect
import statistics
import subprocess
import sys
from collections import Counter, defaultdict

LINE, PAGE = 6, 12


def read_maps(path):
    maps = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else "[anon]"
            maps.append((lo, hi, int(fields[2], 16), fields[1], name))
    return maps


class Symbols:
    def __init__(self, maps):
        self.maps = maps
        self.tables = {}

    def table(self, path):
        if path not in self.tables:
            t = []
            for dynamic in (False, True):
                args = ["nm", "-n", "--defined-only"] + (["-D"] if dynamic else []) + [path]
                out = subprocess.run(args, capture_output=True, text=True).stdout
                # Only exported names: a static function is shown as the export before it.
                t = [(int(p[0], 16), ("near " if dynamic else "") + p[2])
                     for p in (l.split() for l in out.splitlines())
                     if len(p) == 3 and p[1] in "tTwW"]
                if t:
                    break
            self.tables[path] = (t, [a for a, _ in t])
        return self.tables[path]

    def where(self, addr):
        for lo, hi, off, perm, name in self.maps:
            if lo <= addr < hi:
                if not name.startswith("/"):
                    return name, "?"
                base = min(l - o for l, h, o, p, n in self.maps if n == name)
                t, keys = self.table(name)
                i = bisect.bisect_right(keys, addr - base) - 1
                return name.rsplit("/", 1)[-1], (t[i][1] if i >= 0 else "?")
        return "?", "?"


def load(path):
    ins, data = Counter(), set()
    with open(path) as f:
        for line in f:
            if line.startswith("I "):
                ins[int(line[3:].split(",", 1)[0], 16)] += 1
            elif line[:3] in (" L ", " S ", " M "):
                data.add(int(line[3:].split(",", 1)[0], 16))
    return ins, data


def main():
    maps, top, paths = read_maps(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    windows = []
    for p in paths:
        ins, data = load(p)
        windows.append((sum(ins.values()), ins, data))
    counts = [w[0] for w in windows]
    if not counts or statistics.median(counts) == 0:
        sys.exit("footprint: the traces hold no instructions (did the pings go through?)")
    median = sorted(windows, key=lambda w: w[0])[len(windows) // 2]
    total, ins, data = median
    ilines = {a >> LINE for a in ins}
    dlines = {a >> LINE for a in data}
    ipages = {a >> PAGE for a in ins}
    dpages = {a >> PAGE for a in data}
    print(f"windows: {len(windows)}; instructions per window: min {min(counts)}, "
          f"median {total}, max {max(counts)}")
    print(f"median window: {total} instructions; {len(ilines)} lines of code, {len(dlines)} of "
          f"data ({(len(ilines) + len(dlines)) * 64 // 1024} KiB); {len(ipages)} code pages, "
          f"{len(dpages)} data pages")

    sym = Symbols(maps)
    by_obj = defaultdict(lambda: [0, set(), set()])
    by_fn = defaultdict(lambda: [0, set()])
    for addr, n in ins.items():
        obj, fn = sym.where(addr)
        by_obj[obj][0] += n
        by_obj[obj][1].add(addr >> LINE)
        by_fn[(obj, fn)][0] += n
        by_fn[(obj, fn)][1].add(addr >> LINE)
    for addr in data:
        obj, _ = sym.where(addr)
        by_obj[obj][2].add(addr >> LINE)
    print("\nper object: instructions, code lines, data lines")
    for obj, (n, il, dl) in sorted(by_obj.items(), key=lambda kv: -kv[1][0]):
        print(f"  {n:7d} {len(il):5d} {len(dl):5d}  {obj}")
    print(f"\nfunctions (top {top} by instructions): instructions, code lines")
    for (obj, fn), (n, il) in sorted(by_fn.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {n:7d} {len(il):5d}  {obj}: {fn}")


if __name__ == "__main__":
    main()
