#!/usr/bin/env python3
"""Per-kernel times of one prefill forward from Nsight Compute's raw CSV (ncu --csv --page raw with the metrics
gpu__time_duration.sum, dram__bytes_read.sum, dram__bytes_write.sum, launch__grid_size).

A forward is the run of kernels from an embedding kernel to the row_summary after it; the last forward whose
row_summary has ROWS blocks (default 4096: B8 x S512) is reported, its kernels grouped by place (the embedding, each kernel of a layer summed over the
layers, the LM head, the summary: calls, total us, DRAM MB read / written). With two files, the two tables side by side.
Usage: kernel_times.py [--rows N] A.csv [B.csv]"""
import collections
import csv
import sys


def load(path):
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]  # the program's own output precedes ncu's table
    rows = list(csv.DictReader(lines))
    return [r for r in rows if r.get("Kernel Name") and r.get("gpu__time_duration.sum", "").replace(".", "").replace(",", "").isdigit()]


def number(r, key):
    return float(r.get(key, "0").replace(",", "") or 0)


def short(name):
    name = name.replace("void ", "").split("(")[0].split("<")[0]
    return name.split("::")[-1][:40]


def last_forward(kernels, rows):
    forward, found = [], None
    for k in kernels:
        name = short(k["Kernel Name"])
        if name.startswith("embed"):
            forward = []
        forward.append(k)
        if name.startswith("row_summary") and int(number(k, "launch__grid_size")) == rows:
            found = forward
            forward = []
    return found or []


def table(forward, layers=12):
    """Kernels grouped by their place in the forward: the embedding, each kernel of a layer (summed over the
    layers, when the forward is embedding + layers x k kernels + LM head + summary), the tail."""
    t = collections.OrderedDict()
    per_layer = (len(forward) - 3) // layers if (len(forward) - 3) % layers == 0 else 0
    for i, k in enumerate(forward):
        name = short(k["Kernel Name"])
        if per_layer and 1 <= i < len(forward) - 2:
            name = f"layer[{(i - 1) % per_layer}] {name}"[:40]
        e = t.setdefault(name, [0, 0.0, 0.0, 0.0])
        e[0] += 1
        e[1] += number(k, "gpu__time_duration.sum") / 1e3  # ns -> us
        e[2] += number(k, "dram__bytes_read.sum") / 1e6
        e[3] += number(k, "dram__bytes_write.sum") / 1e6
    return t


def main(argv):
    rows = 4096
    if argv and argv[0] == "--rows":
        rows, argv = int(argv[1]), argv[2:]
    tables = []
    for path in argv:
        fwd = last_forward(load(path), rows)
        if not fwd:
            print(f"{path}: no forward of {rows} rows found")
            return 1
        tables.append((path, table(fwd)))
    names = list(dict.fromkeys(n for _, t in tables for n in t))
    head = f"{'kernel':40s}" + "".join(f" | {p.split('/')[-1][:28]:>28s}: calls     us  MB rd  MB wr" for p, _ in tables)
    print(head)
    for n in names:
        line = f"{n:40s}"
        for _, t in tables:
            c, us, rd, wr = t.get(n, [0, 0, 0, 0])
            line += f" | {'':28s}  {c:5d} {us:7.1f} {rd:6.0f} {wr:6.0f}"
        print(line)
    line = f"{'total':40s}"
    for _, t in tables:
        line += f" | {'':28s}  {sum(v[0] for v in t.values()):5d} {sum(v[1] for v in t.values()):7.1f} " \
                f"{sum(v[2] for v in t.values()):6.0f} {sum(v[3] for v in t.values()):6.0f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
