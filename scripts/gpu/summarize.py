#!/usr/bin/env python3
"""Turns results.jsonl of check_cuda_engine.sh into the markdown tables of docs/cuda-engine.md."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = lambda c: [r for r in rows if r.get("check") == c]
gpu = next((r["gpu"] for r in rows if "gpu" in r), "unknown GPU")
print(f"Card: **{gpu}**\n")
for r in by("FAILED"):
    print(f"- FAILED: `{r['command']}`")
for r in by("SKIPPED"):
    print(f"- skipped: {r['what']}: {r['why']}")
for r in by("pytorch_reference"):
    print(f"PyTorch {r['torch']}; reference checkpoint: {r['parameters']:,} parameters; PyTorch's own error vs its fp32: "
          + ", ".join(f"{k} rel-norm {v['rel_norm_err']:.2e}" for k, v in r["pytorch_lowp_error_vs_fp32"].items()) + "\n")
for r in by("wikitext2_tokens"):
    print(f"WikiText-2 test ids: {r['tokens']:,} (expected {r['expected_tokens']:,}), sha256 matches reference: "
          f"{r['sha256_matches_reference']}\n")
if by("logits"):
    print("| precision | B x S | max rel err | rel-norm err | top-1 agree | decode vs ref rel-norm | graph vs eager max abs | "
          "device NLL vs host | summary top1 ok | checksum (device / host) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in by("logits"):
        print(f"| {r['precision']} | {r.get('batch', '?')} x {r.get('seq', '?')} | {r['max_rel_err']:.2e} | {r['rel_norm_err']:.2e} | {r['top1_agreement_vs_ref']:.4f} | "
              f"{r['decode_vs_ref_rel_norm']:.2e} | {r['graph_vs_eager_max_abs']:.1e} | {r['device_nll_vs_host_max_abs']:.1e} | "
              f"{r['summary_top1_matches_logits']} | {r['summary_checksum']:.4f} / {r['host_checksum_of_logits']:.4f} |")
    print()
if by("perplexity"):
    print("| model | precision | ppl | vs 581.107 | scored tokens | windows | pass time (median of 3) | per-window path max NLL diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in by("perplexity"):
        rel = f"{r['rel_diff_percent']:+.4f} %" if "rel_diff_percent" in r else "(random weights)"
        print(f"| {r['model'].rstrip('/').split('/')[-1]} | {r['precision']} | {r['ppl']:.4f} | {rel} | {r['scored_tokens']:,} | "
              f"{r['windows']} | {r['seconds_median_of_3']*1e3:.1f} ms | {r['per_window_path_max_abs_nll_diff']:.1e} |")
    print()
ceil = next(iter(by("ceilings")), None)
if ceil:
    print(f"Ceilings measured on this card: fp16 8192³ product {ceil['fp16_matmul_tflops']:.0f} TFLOP/s, "
          f"device copy {ceil['copy_tbps']:.2f} TB/s.\n")
speed = [r for r in by("prefill_speed") if r.get("variant", "default") == "default"]
variants = [r for r in by("prefill_speed") if r.get("variant", "default") != "default"]
if speed:
    shapes = []
    for r in speed:
        if (r["batch"], r["seq"]) not in shapes:
            shapes.append((r["batch"], r["seq"]))
    anchors = by("pytorch_anchor")
    head = ["engine fp16 (GPU)", "engine fp16 (wall)", "engine bf16 (GPU)", "engine fp32 (GPU)"]
    head += [f"{a['implementation']} {a['dtype']}" for a in anchors]
    head += ["floor", "fp16 % of floor"]
    print("| B x S | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for B, S in shapes:
        get = lambda p, k: next((r[k] for r in speed if r["precision"] == p and r["batch"] == B and r["seq"] == S), None)
        cells = [get("fp16", "gpu_ms_median"), get("fp16", "wall_ms_median"), get("bf16", "gpu_ms_median"),
                 get("fp32", "gpu_ms_median")]
        cells += [a.get(f"B{B}xS{S}_ms") for a in anchors]
        floor = get("fp16", "floor_ms")
        if ceil:  # recompute the floor with the measured ceilings
            r = next(r for r in speed if r["precision"] == "fp16" and r["batch"] == B and r["seq"] == S)
            flops = r["tflops_achieved"] * 1e12 * r["gpu_ms_median"] / 1e3
            floor = max(flops / (ceil["fp16_matmul_tflops"] * 1e12), 249e6 / (ceil["copy_tbps"] * 1e12)) * 1e3
        pct = 100 * floor / get("fp16", "gpu_ms_median") if floor else None
        fmt = lambda v: "–" if v is None else f"{v:.3f}"
        print(f"| B{B} x S{S} | " + " | ".join(fmt(c) for c in cells) + f" | {fmt(floor)} | "
              + ("–" if pct is None else f"{pct:.0f} %") + " |")
    print("\nTimes in ms, median of timed calls; engine GPU = CUDA events around the graph launch, wall = the whole "
          "blocking Backend::prefill call (ids in, top-1 + row sums out). Floor = max(FLOPs / matmul peak, 249 MB of fp16 "
          "weights / copy bandwidth).\n")
if variants:
    print("Variants (fp16, GPU ms median): " + "; ".join(f"{r['variant']} B{r['batch']}xS{r['seq']} {r['gpu_ms_median']:.3f}" for r in variants) + "\n")
for r in by("decode_speed"):
    print(f"- decode {r['precision']} [{r.get('variant', 'default')}] batch {r['batch']}, prompt {r['prompt']}, {r['new_tokens']} new tokens: "
          f"**{r['new_tokens_per_s_per_sequence_median']:.0f} new tokens/s per sequence** "
          f"(step GPU time {r['step_gpu_ms_median']:.3f} ms)")
