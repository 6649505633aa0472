#!/usr/bin/env python3
"""A run folder of `gptbench run` in a few lines, for a device call's printed output: the report's verdict and run
status, the median of every cell of one device and precision (default the CUDA engine's fp16 — the rows the speed
goals of issue 7 are about), and each sanity gate's status and summary.

Usage: scripts/gpu/matrix_digest.py RUN_DIR [--device cuda] [--precision fp16]
(scripts/gpu/run_study.sh prints it after the matrix; it also reads a run folder fetched from the machine.)"""
import argparse
import csv
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="fp16")
    args = ap.parse_args()
    report = os.path.join(args.run_dir, "report", "Technical_Report.md")
    summary = os.path.join(args.run_dir, "processed", "latency_summary.csv")
    gates = os.path.join(args.run_dir, "processed", "gates.json")
    for path in (report, summary, gates):
        if not os.path.isfile(path):
            sys.exit(f"matrix_digest: {path}: missing (not a finished gptbench run folder)")
    verdict_shown = False
    with open(report) as f:
        for line in f:
            if line.startswith("**Verdict") or line.startswith("| status |"):
                print(line.rstrip())
                verdict_shown = verdict_shown or line.startswith("**Verdict")
    with open(summary, newline="") as f:
        for row in csv.DictReader(f):
            if row["device"] != args.device or row["precision"] != args.precision:
                continue
            shape = f"B{row['batch']} x S{row['seq']}" if row["scenario"] == "prefill" else \
                f"B{row['batch']} prompt {row['prompt']} + {row['new_tokens']}"
            if row["status"] != "ok":
                print(f"  {row['backend']} {args.precision} {row['scenario']:7s} {shape:22s} {row['status']}: {row['error']}")
                continue
            extra = f"  ttft_ms {float(row['ttft_ms']):.4f}" if row["ttft_ms"] else ""
            print(f"  {row['backend']} {args.precision} {row['scenario']:7s} {shape:22s} median_ms {float(row['median_ms']):.4f}"
                  f"  tokens_per_s {float(row['tokens_per_s']):,.0f}{extra}")
    with open(gates) as f:
        g = json.load(f)
    if not verdict_shown:  # (the report's banner says it already)
        print(g["verdict"])
    for gate in g["gates"]:
        print(f"  {gate['name']} {gate['status']} {gate['summary'][:300]}")


if __name__ == "__main__":
    main()
