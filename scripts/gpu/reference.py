#!/usr/bin/env python3
"""PyTorch / transformers side of the CUDA engine check (runs on the GPU machine; see check_cuda_engine.sh).

  reference.py prepare --work DIR --carry DIR   random GPT-2 124M checkpoint, ids + fp32 reference logits,
                                                 WikiText-2 test ids (tokenized with transformers)
  reference.py anchors --work DIR --json FILE   transformers eager / SDPA prefill timings and the card's ceilings
  reference.py attention --work DIR --json FILE PyTorch's fused causal attention (FlashAttention-2, memory-efficient,
                                                 cuDNN) on the prefill attention shapes, for attention_lab
"""
import argparse
import hashlib
import json
import os
import statistics
import sys
import time

import torch

SHAPES = [(1, 128), (1, 512), (8, 128), (8, 512), (32, 128), (1, 1024)]
WT2_TOKENS = 287644
WT2_SHA256 = "ef6af648320b73e3cb62461c48c8e4539aec4d10c751005e32d690977f0b9ccf"


def emit(path, obj):
    line = json.dumps(obj)
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def load(model_dir, dtype, impl):
    from transformers import GPT2LMHeadModel
    try:
        m = GPT2LMHeadModel.from_pretrained(model_dir, dtype=dtype, attn_implementation=impl)
    except TypeError:
        m = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation=impl)
    return m.cuda().eval()


def prepare(args):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    work = args.work
    os.makedirs(work, exist_ok=True)
    model_dir = os.path.join(work, "gpt2-random")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config())
    # GPT-2's initialisation leaves biases at 0 and LayerNorm at (1, 0): perturb them so the check covers the
    # bias epilogues and LayerNorm parameters too.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif ".ln_" in name or "ln_f" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(model_dir, safe_serialization=True)
    # GPT-2's tokenizer files (the tiny model carries the same vocabulary), so gptbench can calibrate this model.
    import shutil
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(args.carry, "gpt2-tiny-wt2", f), model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    model = model.cuda().eval()
    B, S = args.batch, args.seq
    ids = torch.randint(0, 50257, (B, S), generator=torch.Generator().manual_seed(2), dtype=torch.int32)
    ids.numpy().tofile(os.path.join(work, "ids.bin"))
    with torch.inference_mode():
        ref = model(ids.long().cuda(), use_cache=False).logits.float()
    ref.cpu().numpy().astype("float32").tofile(os.path.join(work, "ref_fp32.bin"))
    # PyTorch's own low-precision error on the same input, for context.
    errs = {}
    for name, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        m = load(model_dir, dt, "sdpa")
        with torch.inference_mode():
            out = m(ids.long().cuda(), use_cache=False).logits.float()
        d = out - ref
        errs[name] = {"rel_norm_err": float(d.norm() / ref.norm()),
                      "max_rel_err": float(d.abs().max() / ref.abs().max())}
        del m
    emit(args.json, {"check": "pytorch_reference", "parameters": n_params, "batch": B, "seq": S,
                     "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
                     "pytorch_lowp_error_vs_fp32": errs})

    # WikiText-2 test ids with transformers' tokenizer from the carried vocab/merges.
    tiny = os.path.join(args.carry, "gpt2-tiny-wt2")
    text = open(os.path.join(args.carry, "wiki.test.raw"), encoding="utf-8").read()
    # GPT-2's byte-level BPE straight from the tokenizers library (what GPT2TokenizerFast wraps).
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.BPE.from_file(os.path.join(tiny, "vocab.json"), os.path.join(tiny, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    t0 = time.time()
    wt2 = tok.encode(text).ids
    import numpy as np
    arr = np.asarray(wt2, dtype="<i4")
    arr.tofile(os.path.join(work, "wt2_test.bin"))
    sha = hashlib.sha256(arr.tobytes()).hexdigest()
    emit(args.json, {"check": "wikitext2_tokens", "tokens": len(wt2), "expected_tokens": WT2_TOKENS,
                     "sha256_matches_reference": sha == WT2_SHA256, "seconds": time.time() - t0})


def time_calls(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def time_shapes(model, shapes, args):
    """{"B{B}xS{S}_ms": median ms} of model(ids) on random ids of each (B, S), timed by time_calls."""
    times = {}
    for B, S in shapes:
        ids = torch.randint(0, 50257, (B, S), device="cuda")
        with torch.inference_mode():
            times[f"B{B}xS{S}_ms"] = time_calls(lambda: model(ids, use_cache=False), args.iters, args.warmup)
    return times


def anchors(args):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gpu = torch.cuda.get_device_name()
    # Ceilings of this card: a big fp16 product and a device-to-device copy.
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    ms = time_calls(lambda: a @ b, 20, 5)
    tflops = 2 * 8192 ** 3 / (ms / 1e3) / 1e12
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms_copy = time_calls(lambda: y.copy_(x), 20, 5)
    tbps = 2 * (1 << 30) / (ms_copy / 1e3) / 1e12
    del a, b, x, y
    emit(args.json, {"check": "ceilings", "gpu": gpu, "fp16_matmul_tflops": tflops, "copy_tbps": tbps})
    model_dir = os.path.join(args.work, "gpt2-random")
    for impl, name, dt in (("sdpa", "fp16", torch.float16), ("eager", "fp16", torch.float16),
                           ("sdpa", "fp32", torch.float32), ("eager", "fp32", torch.float32)):
        m = load(model_dir, dt, impl)
        row = {"check": "pytorch_anchor", "gpu": gpu, "implementation": f"transformers {impl}", "dtype": name,
               "torch": torch.__version__}
        row.update(time_shapes(m, SHAPES, args))
        emit(args.json, row)
        del m
        torch.cuda.empty_cache()


def compile_anchors(args):
    """The torch.compile anchor of ../shared/reference/anchors-h200.md rerun on this card: transformers SDPA in fp16
    under torch.compile (--compile-mode, default max-autotune-no-cudagraphs as there; static shapes, so each shape
    compiles its own graph, which takes a minute or more), timed like the other anchors."""
    gpu = torch.cuda.get_device_name()
    m = load(os.path.join(args.work, "gpt2-random"), torch.float16, "sdpa")
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes.split(",")]
    # the same model uncompiled first, so that this call compares both on one card
    plain = {"check": "pytorch_anchor", "gpu": gpu, "implementation": "transformers sdpa", "dtype": "fp16",
             "torch": torch.__version__}
    plain.update(time_shapes(m, shapes, args))
    emit(args.json, plain)
    compiled = torch.compile(m, mode=args.compile_mode, dynamic=False)
    row = {"check": "pytorch_anchor", "gpu": gpu, "implementation": f"torch.compile({args.compile_mode}) sdpa",
           "dtype": "fp16", "torch": torch.__version__, "compile_seconds": {}}
    for B, S in shapes:
        ids = torch.randint(0, 50257, (B, S), device="cuda")
        with torch.inference_mode():
            t0 = time.time()
            compiled(ids, use_cache=False)
            torch.cuda.synchronize()
            row["compile_seconds"][f"B{B}xS{S}"] = time.time() - t0
            row[f"B{B}xS{S}_ms"] = time_calls(lambda: compiled(ids, use_cache=False), args.iters, args.warmup)
        print(f"torch.compile B{B}xS{S}: {row[f'B{B}xS{S}_ms']:.3f} ms "
              f"(compiled in {row['compile_seconds'][f'B{B}xS{S}']:.0f} s)", file=sys.stderr)
    emit(args.json, row)


def attention(args):
    """PyTorch's fused attention kernels on the prefill attention shapes of GPT-2 124M (12 heads of 64), causal,
    fp16, read from the same interleaved [B, S, 3, H, D] qkv rows the engine's kernel reads: the yardstick for
    lab/cuda/attention_lab (whose JSON lines carry the same shapes)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    gpu = torch.cuda.get_device_name()
    H, D = 12, 64
    for B, S in ((1, 128), (8, 128), (8, 512), (32, 128), (1, 1024)):
        qkv = torch.randn(B, S, 3, H, D, device="cuda", dtype=torch.float16)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # [B, H, S, D] views, D contiguous
        row = {"check": "pytorch_attention", "gpu": gpu, "torch": torch.__version__, "batch": B, "seq": S,
               "heads": H, "head_dim": D, "dtype": "fp16"}
        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                              ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    # 20 calls back to back per timed sample, so the GPU never waits for Python to launch the next
                    def calls():
                        for _ in range(20):
                            F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    row[f"{name}_us"] = 1e3 * time_calls(calls, args.iters, args.warmup) / 20
            except RuntimeError as e:  # a backend this build or shape does not support
                row[f"{name}_error"] = str(e).splitlines()[0][:200]
        flops = 4.0 * B * H * S * S * D / 2  # causal QK^T and PV
        for name in ("flash", "efficient", "cudnn"):
            if f"{name}_us" in row:
                row[f"{name}_tflops"] = flops / (row[f"{name}_us"] * 1e-6) / 1e12
        emit(args.json, row)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["prepare", "anchors", "compile", "attention"])
    p.add_argument("--work", required=True)
    p.add_argument("--carry", default=".device-carry/cuda")
    p.add_argument("--json", default="")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--shapes", default="1x128,8x512", help="compile: BxS,... (the anchors file's two)")
    p.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    args = p.parse_args()
    {"prepare": prepare, "anchors": anchors, "compile": compile_anchors, "attention": attention}[args.cmd](args)


if __name__ == "__main__":
    main()
