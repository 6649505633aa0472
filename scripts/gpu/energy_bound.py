#!/usr/bin/env python3
"""How fast can GPT-2 124M's B8 x S512 fp16 prefill run once the card sits at its power limit? (issue 7)

The engine's B8 x S512 prefill takes ~1.95 ms on a cool H200 and 2.09-2.18 ms after a second of back-to-back
calls, when the card holds its 700 W limit and lowers its clock. At that point time = joules per forward / watts,
so the question is how many joules the forward's arithmetic needs however it is scheduled. This script measures
what cuBLAS (through PyTorch) needs for the same arithmetic under the same sustained load:

  square      one 8192^3 fp16 product (the anchors file's ceiling product)
  layers      the 48 per-layer products of one B8 x S512 forward (4,096 rows: QKV 768->2304, attention projection
              768->768, FC 768->3072, MLP projection 3072->768, 12 times), fp16 in, fp32 accumulate, fp16 out
  lm_head     the LM head of that forward as one product over the vocabulary padded to 50,304 as the engine pads
              it (50,257 columns leave the fp16 rows misaligned and cuBLAS falls back to a ~100 TFLOP/s kernel:
              session 21, call 2), writing its 412 MB of fp16 logits (the engine writes none: it keeps a per-row
              summary; so this is an upper bound)
  attention   PyTorch's fused causal attention (SDPA) on the forward's 12 layers (8 x 12 heads x 512 x 64)

Each workload is captured once as a CUDA graph and replayed back to back for --seconds (default 4); the first
second brings the card to its limit and is not counted. Over the rest, NVML's energy counter and the wall clock
give watts, TFLOP/s and joules per replay; the SM clock is sampled at every batch of replays.

  energy_bound.py --json FILE [--seconds 4]

One JSON line per workload: {"check": "sustained_products", "workload", "tflop_per_replay", "ms_per_replay",
"tflops", "watts", "joules_per_replay", "sm_mhz_median", "power_limit_w"} and a final "sustained_floor" line: the
sum of the sustained per-forward times of layers + lm_head + attention, the forward's arithmetic at cuBLAS's and
PyTorch SDPA's pace under the power limit.
"""
import argparse
import ctypes
import statistics
import time

import torch

from reference import emit  # (scripts/gpu/reference.py: one JSON line to stdout and the --json file)

ROWS = 4096  # B8 x S512
C = 768
LAYERS = 12
VOCAB = 50257


class Nvml:
    """The few NVML calls needed, through the driver's own libnvidia-ml (no Python package needed)."""

    def __init__(self, index=0):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self._ok(self.lib.nvmlInit_v2())
        self.handle = ctypes.c_void_p()
        self._ok(self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.handle)))

    @staticmethod
    def _ok(rc):
        if rc != 0:
            raise RuntimeError(f"NVML call failed with code {rc}")

    def energy_mj(self):  # millijoules since the driver was loaded (Volta and later)
        v = ctypes.c_ulonglong()
        self._ok(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(v)))
        return v.value

    def sm_mhz(self):
        v = ctypes.c_uint()
        self._ok(self.lib.nvmlDeviceGetClockInfo(self.handle, 1, ctypes.byref(v)))  # NVML_CLOCK_SM
        return v.value

    def power_limit_w(self):
        v = ctypes.c_uint()
        self._ok(self.lib.nvmlDeviceGetEnforcedPowerLimit(self.handle, ctypes.byref(v)))
        return v.value / 1000.0


def workloads():
    """name -> (function issuing one replay's work, TFLOP of one replay)."""
    h = torch.float16
    g = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape):  # N(0, 0.02) like init-random's weights; activations of unit scale
        return torch.randn(*shape, device="cuda", dtype=h, generator=g)

    out = {}
    a, b = rnd(8192, 8192), rnd(8192, 8192)
    out["square"] = (lambda: torch.mm(a, b), 2 * 8192 ** 3 / 1e12)

    x = rnd(ROWS, C)
    hid = rnd(ROWS, 4 * C)
    w = [(rnd(C, 3 * C) * 0.02, rnd(C, C) * 0.02, rnd(C, 4 * C) * 0.02, rnd(4 * C, C) * 0.02) for _ in range(LAYERS)]
    bias = [(rnd(3 * C), rnd(C), rnd(4 * C), rnd(C)) for _ in range(LAYERS)]
    y3, y1, y4 = torch.empty(ROWS, 3 * C, device="cuda", dtype=h), torch.empty(ROWS, C, device="cuda", dtype=h), \
        torch.empty(ROWS, 4 * C, device="cuda", dtype=h)

    def layers():
        for (wq, wp, wf, wm), (bq, bp, bf, bm) in zip(w, bias):
            torch.addmm(bq, x, wq, out=y3)
            torch.addmm(bp, x, wp, out=y1)
            torch.addmm(bf, x, wf, out=y4)
            torch.addmm(bm, hid, wm, out=y1)

    out["layers"] = (layers, 2 * ROWS * C * (3 * C + C + 4 * C + 4 * C) * LAYERS / 1e12)

    vocab_padded = (VOCAB + 127) // 128 * 128
    wte = rnd(vocab_padded, C) * 0.02
    logits = torch.empty(ROWS, vocab_padded, device="cuda", dtype=h)

    def lm_head():
        torch.mm(x, wte.t(), out=logits)

    out["lm_head"] = (lm_head, 2 * ROWS * C * VOCAB / 1e12)  # the useful FLOPs (the padding's are not counted)

    q, k, v = (rnd(8, 12, 512, 64) for _ in range(3))

    def attention():
        for _ in range(LAYERS):
            torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    # causal: half of the 4 * B * H * S^2 * d of a full attention (as the engine's profile counts it)
    out["attention"] = (attention, LAYERS * 2 * 8 * 12 * 512 * 512 * 64 / 1e12)
    return out


def sustained(nvml, fn, seconds):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm cuBLAS's choice outside the capture
        fn()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    # replays per batch: ~25 ms of work, so that the syncs between batches are a small fraction
    t0 = time.perf_counter()
    for _ in range(5):
        graph.replay()
    torch.cuda.synchronize()
    per = max(1, int(0.025 / ((time.perf_counter() - t0) / 5)))
    start = time.perf_counter()
    e0 = t0w = None
    n = 0
    clocks = []
    while True:
        for _ in range(per):
            graph.replay()
        torch.cuda.synchronize()
        now = time.perf_counter()
        if e0 is None:
            if now - start >= 1.0:  # the card has reached its limit: start counting
                e0, t0w = nvml.energy_mj(), now
            continue
        n += per
        clocks.append(nvml.sm_mhz())
        if now - start >= seconds:
            e1 = nvml.energy_mj()
            dt = now - t0w
            return n, dt, (e1 - e0) / 1e3, statistics.median(clocks)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", default="")
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    nvml = Nvml(torch.cuda.current_device())
    gpu = torch.cuda.get_device_name()
    limit = nvml.power_limit_w()
    per_forward_ms = {}
    for name, (fn, tflop) in workloads().items():
        n, dt, joules, mhz = sustained(nvml, fn, args.seconds)
        ms = dt / n * 1e3
        row = {"check": "sustained_products", "gpu": gpu, "torch": torch.__version__, "workload": name,
               "tflop_per_replay": tflop, "replays": n, "ms_per_replay": ms, "tflops": tflop / (ms / 1e3),
               "watts": joules / dt, "joules_per_replay": joules / n, "sm_mhz_median": mhz, "power_limit_w": limit}
        emit(args.json, row)
        if name != "square":
            per_forward_ms[name] = ms
    emit(args.json, {"check": "sustained_floor", "gpu": gpu, "shape": "B8xS512", "parts_ms": per_forward_ms,
                     "products_and_attention_ms": sum(per_forward_ms.values()),
                     "note": "cuBLAS products + PyTorch SDPA attention of one forward, each timed alone at the "
                             "power limit; no LayerNorm, GELU, residual or summary"})


if __name__ == "__main__":
    main()
