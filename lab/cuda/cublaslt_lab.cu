// Kernel lab for the engine's cuBLASLt products (class Gemm in src/backends/cuda/cuda_engine.cu), after llm.c's
// dev/cuda: does cuBLASLt have faster algorithms / configurations for GPT-2 124M's products than the ones the
// engine's autotune times (the heuristic's top 16 + split-K variants of its first pick)?
//
// Products, set up as the engine's Gemm does (fp16 in / out; TN: W [N][K] row-major = column-major [K][N] with op T,
// activations [M][K] row-major = column-major [K][M] with op N, y [M][N] row-major = column-major [N][M], C = D = y;
// compute CUBLAS_COMPUTE_32F, scale CUDA_R_32F, alpha 1, beta 0, fp16 bias, 32 MiB workspace):
//   qkv  N 2304 K 768 BIAS     proj  N 768 K 768 BIAS     fc  N 3072 K 768 GELU_BIAS     mproj  N 768 K 3072 BIAS
//   lm_head  N 50304 K 768 DEFAULT (no epilogue; the padded vocabulary)
// each at M = 4096 (batch 8 x 512 tokens), then at M = 128. --quick: M = 4096 qkv and proj only.
//
// Versions (per shape):
//   heur1        cublasLtMatmulAlgoGetHeuristic's first result (what the engine runs without autotune)
//   engine-tune  the engine's autotune as it is written: each of its candidates (heur16+sk's) called once, then 5
//                eager calls timed with events, the fastest kept; that pick is then timed like every version below
//                (does the engine's own tuning find the best of its candidates?)
//   heur16+sk    the best of the engine's candidates: the heuristic's top 16 (state SUCCESS) + split-K 2/4/8/16 of
//                its first result (COMPUTE_TYPE reduction, where AlgoCheck accepts them)
//   heurAll      the best of all the heuristic results (200 requested; how many came back is printed)
//   exhaustive   every algorithm id of cublasLtMatmulAlgoGetIds for these types, in two stages:
//                1. base configurations: cublasLtMatmulAlgoInit, then every pair of CUBLASLT_ALGO_CAP_TILE_IDS x
//                   CUBLASLT_ALGO_CAP_STAGES_IDS (split-K 1, no swizzle, custom option 0, cluster auto). At most
//                   1500 valid ones are taken, round robin over the algorithm ids (a cut is spread evenly), and
//                   screened.
//                2. the 16 fastest bases, plus the (id, tile, stages) of heur1 and of the 4 best-screened heuristic
//                   results, each expanded over split-K {1, 2, 3, 4} (M < 1024 also 8, 16; only where
//                   CUBLASLT_ALGO_CAP_SPLITK_SUPPORT) x reduction scheme (split > 1: COMPUTE_TYPE and INPLACE where
//                   CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK has them; NONE is always offered and AlgoCheck decides)
//                   x CTA swizzling {0, 1} (where supported) x custom option 0 .. min(CUSTOM_OPTION_MAX, 3) x
//                   cluster shape {auto, 1x1x1, 2x1x1, 1x2x1, 2x2x1, 4x1x1, 1x4x1}. This cuBLASLt has
//                   CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID but no capability that lists cluster shapes, so AlgoCheck
//                   decides; an algorithm that accepts and ignores the attribute shows up as near-identical rows.
//                   Taken round robin over the bases up to 3000 valid configurations per shape (stages 1 + 2).
//                Every configuration is validated with cublasLtMatmulAlgoCheck (status and state SUCCESS, workspace
//                <= 32 MiB) before it runs. Checks and screening stop at a per-shape time budget (--budget, default
//                10 s, 5 s with --quick; stage 1 checks until 15% of it, screens until 45%, stage 2 checks until 55%);
//                every cut (configs not checked, over the cap, not screened) is printed.
// Tile names are cuBLASLt's (rows x cols of C/D in its column-major view: rows along N, cols along M here); stages
// "AxB" / "AxAUTO" likewise; cluster "auto" = CUBLASLT_CLUSTER_SHAPE_AUTO.
//
// Check: heur1's output (the reference y_ref) against a host reference at 64 (m, n) samples (the corners and
// random ones; double from the same fp16 inputs, + bias, GELU tanh for fc): max |gpu - ref| / max |ref| <= 1e-2.
// Then every finalist of every version (the configs that get a precise timing; y prefilled with NaN bits) against
// y_ref over all M x N outputs: max |y - y_ref| / max |y_ref| <= 2e-2 (split-K and other accumulation orders round
// differently in fp16) and no non-finite output. A failing configuration is reported and not ranked. Inputs: x
// uniform in [-1, 1), W uniform in [-1, 1) / sqrt(K) (outputs O(1)), bias uniform in [-0.5, 0.5), all fp16.
// Exit status 1 on any failed check, 2 on a CUDA / cuBLAS setup error.
//
// Timing. Screen (every candidate of heur16+sk, heurAll and the exhaustive sweep): one eager call (it loads the
// kernel: lazy module loading must not happen behind the blocking kernel below), one event-timed probe call (a
// config slower than max(3 x, +20 us) the best screened so far stops there, its probe time kept), then R calls
// enqueued behind a kernel that spins on a host-mapped flag (released once all R are enqueued; 200 ms timeout,
// counted), so that they run back to back as in a graph instead of paying ~5 us of host time per cublasLtMatmul
// (which would hide every difference at M = 128); events around the R calls; R = 2 ms of heur1's time, 3 .. 20.
// Precise (the finalists: heur1, the engine-tune pick, the 4 best-screened heur16+sk candidates, the 8 best of
// heurAll, the 8 best of the exhaustive sweep): a CUDA graph of --iters calls (fewer, but at least 20, where one
// replay would take more than 20 ms: lm_head at M = 4096), one eager call, a warm-up replay, 3 timed replays; the
// best replay's us / call. Reported: us / call, TFLOP/s (2 M N K), and heur16+sk's time / the version's (> 1:
// faster than the engine's autotune at its best).
// The weights do not rotate. At M = 4096 these products are compute-bound (>= 300 flop / byte), so that does not
// matter. At M = 128 the layer products' weights (1.2 - 4.7 MB) stay L2-resident between calls: those times are
// what a config can do with warm weights, optimistic next to a real forward that streams GPT-2's 250 MB of weights
// from HBM (gemm_lab rotates them); the ranking of configurations is the point. lm_head's 77 MB exceed L2.
// JSON (--json FILE, one object per line, appended): {"lab":"cublaslt","gpu":...,"M","N","K","product","epilogue",
// "version" (heur1 | engine-tune | heur16+sk | heurAll | exhaustive | exhaustive_top with "rank" 1..5),"us",
// "tflops","iters","candidates","screened","rel_diff","host_ref_rel", the config's attributes,"workspace"}.
// Runtime (estimated, not measured): each shape's sweep stops at --budget (10 s); a config costs ~1 ms of screen
// at M = 4096 (a few ms for lm_head, which uses the whole budget), ~0.2 ms at M = 128: about 1 - 1.5 min for the
// 10 shapes, ~15 s with --quick. A larger --budget buys coverage where a cut is printed.
//
// Build: nvcc -std=c++20 -O3 -lineinfo -arch=sm_90 -I src lab/cuda/cublaslt_lab.cu -o cublaslt_lab -lcublasLt
//        -lcublas
// Run:   ./cublaslt_lab [--iters N] [--json FILE] [--quick] [--budget SECONDS] [--verbose]
//        --verbose: the capabilities of every algorithm id (tiles, stages, split-K, reduction mask, swizzle, custom
//        options, epilogue mask) and its number of valid base configurations, per shape.
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lab_common.cuh"

using namespace lab;

// Cluster shapes (cuBLASLt 12+: CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, cublasLtClusterShape_t).
#if defined(CUBLAS_VER_MAJOR) && CUBLAS_VER_MAJOR >= 12
#define LAB_HAS_CLUSTER 1
#else
#define LAB_HAS_CLUSTER 0
#endif
// The name tables below use the enumerator names of this toolkit's cublasLt.h (CUDA 13).
#if defined(CUBLAS_VER_MAJOR) && CUBLAS_VER_MAJOR >= 13
#define LAB_HAS_NAME_TABLES 1
#else
#define LAB_HAS_NAME_TABLES 0
#endif

namespace {

// ---- names of cuBLASLt's enumerators ---------------------------------------------------------------------------
// Built from the enumerator names (a renumbering in another version cannot mislabel; a missing name fails to build).
struct TileName {
  int id, rows, cols;
};
struct IdName {
  int id;
  const char* name;
};
#if LAB_HAS_NAME_TABLES
#define TL(r, c) {CUBLASLT_MATMUL_TILE_##r##x##c, r, c}
constexpr TileName kTileNames[] = {
    TL(8, 8), TL(8, 16), TL(16, 8), TL(8, 32), TL(16, 16), TL(32, 8), TL(8, 64), TL(16, 32), TL(32, 16), TL(64, 8),
    TL(32, 32), TL(32, 64), TL(64, 32), TL(32, 128), TL(64, 64), TL(128, 32), TL(64, 128), TL(128, 64), TL(64, 256),
    TL(128, 128), TL(256, 64), TL(64, 512), TL(128, 256), TL(256, 128), TL(512, 64), TL(64, 96), TL(96, 64),
    TL(96, 128), TL(128, 160), TL(160, 128), TL(192, 128), TL(128, 192), TL(128, 96), TL(32, 256), TL(256, 32),
    TL(8, 128), TL(8, 192), TL(8, 256), TL(8, 320), TL(8, 384), TL(8, 448), TL(8, 512), TL(8, 576), TL(8, 640),
    TL(8, 704), TL(8, 768), TL(16, 64), TL(16, 128), TL(16, 192), TL(16, 256), TL(16, 320), TL(16, 384), TL(16, 448),
    TL(16, 512), TL(16, 576), TL(16, 640), TL(16, 704), TL(16, 768), TL(24, 64), TL(24, 128), TL(24, 192),
    TL(24, 256), TL(24, 320), TL(24, 384), TL(24, 448), TL(24, 512), TL(24, 576), TL(24, 640), TL(24, 704),
    TL(24, 768), TL(32, 192), TL(32, 320), TL(32, 384), TL(32, 448), TL(32, 512), TL(32, 576), TL(32, 640),
    TL(32, 704), TL(32, 768), TL(40, 64), TL(40, 128), TL(40, 192), TL(40, 256), TL(40, 320), TL(40, 384),
    TL(40, 448), TL(40, 512), TL(40, 576), TL(40, 640), TL(40, 704), TL(40, 768), TL(48, 64), TL(48, 128),
    TL(48, 192), TL(48, 256), TL(48, 320), TL(48, 384), TL(48, 448), TL(48, 512), TL(48, 576), TL(48, 640),
    TL(48, 704), TL(48, 768), TL(56, 64), TL(56, 128), TL(56, 192), TL(56, 256), TL(56, 320), TL(56, 384),
    TL(56, 448), TL(56, 512), TL(56, 576), TL(56, 640), TL(56, 704), TL(56, 768), TL(64, 192), TL(64, 320),
    TL(64, 384), TL(64, 448), TL(64, 576), TL(64, 640), TL(64, 704), TL(64, 768), TL(72, 64), TL(72, 128),
    TL(72, 192), TL(72, 256), TL(72, 320), TL(72, 384), TL(72, 448), TL(72, 512), TL(72, 576), TL(72, 640),
    TL(80, 64), TL(80, 128), TL(80, 192), TL(80, 256), TL(80, 320), TL(80, 384), TL(80, 448), TL(80, 512),
    TL(80, 576), TL(88, 64), TL(88, 128), TL(88, 192), TL(88, 256), TL(88, 320), TL(88, 384), TL(88, 448),
    TL(88, 512), TL(96, 192), TL(96, 256), TL(96, 320), TL(96, 384), TL(96, 448), TL(96, 512), TL(104, 64),
    TL(104, 128), TL(104, 192), TL(104, 256), TL(104, 320), TL(104, 384), TL(104, 448), TL(112, 64), TL(112, 128),
    TL(112, 192), TL(112, 256), TL(112, 320), TL(112, 384), TL(120, 64), TL(120, 128), TL(120, 192), TL(120, 256),
    TL(120, 320), TL(120, 384), TL(128, 320), TL(128, 384), TL(136, 64), TL(136, 128), TL(136, 192), TL(136, 256),
    TL(136, 320), TL(144, 64), TL(144, 128), TL(144, 192), TL(144, 256), TL(144, 320), TL(152, 64), TL(152, 128),
    TL(152, 192), TL(152, 256), TL(152, 320), TL(160, 64), TL(160, 192), TL(160, 256), TL(168, 64), TL(168, 128),
    TL(168, 192), TL(168, 256), TL(176, 64), TL(176, 128), TL(176, 192), TL(176, 256), TL(184, 64), TL(184, 128),
    TL(184, 192), TL(184, 256), TL(192, 64), TL(192, 192), TL(192, 256), TL(200, 64), TL(200, 128), TL(200, 192),
    TL(208, 64), TL(208, 128), TL(208, 192), TL(216, 64), TL(216, 128), TL(216, 192), TL(224, 64), TL(224, 128),
    TL(224, 192), TL(232, 64), TL(232, 128), TL(232, 192), TL(240, 64), TL(240, 128), TL(240, 192), TL(248, 64),
    TL(248, 128), TL(248, 192), TL(256, 192), TL(264, 64), TL(264, 128), TL(272, 64), TL(272, 128), TL(280, 64),
    TL(280, 128), TL(288, 64), TL(288, 128), TL(296, 64), TL(296, 128), TL(304, 64), TL(304, 128), TL(312, 64),
    TL(312, 128), TL(320, 64), TL(320, 128), TL(328, 64), TL(328, 128), TL(336, 64), TL(336, 128), TL(344, 64),
    TL(344, 128), TL(352, 64), TL(352, 128), TL(360, 64), TL(360, 128), TL(368, 64), TL(368, 128), TL(376, 64),
    TL(376, 128), TL(384, 64), TL(384, 128), TL(392, 64), TL(400, 64), TL(408, 64), TL(416, 64), TL(424, 64),
    TL(432, 64), TL(440, 64), TL(448, 64), TL(456, 64), TL(464, 64), TL(472, 64), TL(480, 64), TL(488, 64),
    TL(496, 64), TL(504, 64), TL(520, 64), TL(528, 64), TL(536, 64), TL(544, 64), TL(552, 64), TL(560, 64),
    TL(568, 64), TL(576, 64), TL(584, 64), TL(592, 64), TL(600, 64), TL(608, 64), TL(616, 64), TL(624, 64),
    TL(632, 64), TL(640, 64), TL(648, 64), TL(656, 64), TL(664, 64), TL(672, 64), TL(680, 64), TL(688, 64),
    TL(696, 64), TL(704, 64), TL(712, 64), TL(720, 64), TL(728, 64), TL(736, 64), TL(744, 64), TL(752, 64),
    TL(760, 64), TL(768, 64), TL(64, 16), TL(64, 24), TL(64, 40), TL(64, 48), TL(64, 56), TL(64, 72), TL(64, 80),
    TL(64, 88), TL(64, 104), TL(64, 112), TL(64, 120), TL(64, 136), TL(64, 144), TL(64, 152), TL(64, 160),
    TL(64, 168), TL(64, 176), TL(64, 184), TL(64, 200), TL(64, 208), TL(64, 216), TL(64, 224), TL(64, 232),
    TL(64, 240), TL(64, 248), TL(64, 264), TL(64, 272), TL(64, 280), TL(64, 288), TL(64, 296), TL(64, 304),
    TL(64, 312), TL(64, 328), TL(64, 336), TL(64, 344), TL(64, 352), TL(64, 360), TL(64, 368), TL(64, 376),
    TL(64, 392), TL(64, 400), TL(64, 408), TL(64, 416), TL(64, 424), TL(64, 432), TL(64, 440), TL(64, 456),
    TL(64, 464), TL(64, 472), TL(64, 480), TL(64, 488), TL(64, 496), TL(64, 504), TL(64, 520), TL(64, 528),
    TL(64, 536), TL(64, 544), TL(64, 552), TL(64, 560), TL(64, 568), TL(64, 584), TL(64, 592), TL(64, 600),
    TL(64, 608), TL(64, 616), TL(64, 624), TL(64, 632), TL(64, 648), TL(64, 656), TL(64, 664), TL(64, 672),
    TL(64, 680), TL(64, 688), TL(64, 696), TL(64, 712), TL(64, 720), TL(64, 728), TL(64, 736), TL(64, 744),
    TL(64, 752), TL(64, 760), TL(128, 8), TL(128, 16), TL(128, 24), TL(128, 40), TL(128, 48), TL(128, 56),
    TL(128, 72), TL(128, 80), TL(128, 88), TL(128, 104), TL(128, 112), TL(128, 120), TL(128, 136), TL(128, 144),
    TL(128, 152), TL(128, 168), TL(128, 176), TL(128, 184), TL(128, 200), TL(128, 208), TL(128, 216), TL(128, 224),
    TL(128, 232), TL(128, 240), TL(128, 248), TL(128, 264), TL(128, 272), TL(128, 280), TL(128, 288), TL(128, 296),
    TL(128, 304), TL(128, 312), TL(128, 328), TL(128, 336), TL(128, 344), TL(128, 352), TL(128, 360), TL(128, 368),
    TL(128, 376), TL(128, 392), TL(128, 400), TL(128, 408), TL(128, 416), TL(128, 424), TL(128, 432), TL(128, 440),
    TL(128, 448), TL(128, 456), TL(128, 464), TL(128, 472), TL(128, 480), TL(128, 488), TL(128, 496), TL(128, 504),
    TL(128, 512), TL(192, 8), TL(192, 16), TL(192, 24), TL(192, 32), TL(192, 40), TL(192, 48), TL(192, 56),
    TL(192, 72), TL(192, 80), TL(192, 88), TL(192, 96), TL(192, 104), TL(192, 112), TL(192, 120), TL(192, 136),
    TL(192, 144), TL(192, 152), TL(192, 160), TL(192, 168), TL(192, 176), TL(192, 184), TL(192, 200), TL(192, 208),
    TL(192, 216), TL(192, 224), TL(192, 232), TL(192, 240), TL(192, 248), TL(192, 264), TL(192, 272), TL(192, 280),
    TL(192, 288), TL(192, 296), TL(192, 304), TL(192, 312), TL(192, 320), TL(192, 328), TL(192, 336), TL(256, 8),
    TL(256, 16), TL(256, 24), TL(256, 40), TL(256, 48), TL(256, 56), TL(256, 72), TL(256, 80), TL(256, 88),
    TL(256, 96), TL(256, 104), TL(256, 112), TL(256, 120), TL(256, 136), TL(256, 144), TL(256, 152), TL(256, 160),
    TL(256, 168), TL(256, 176), TL(256, 184), TL(256, 200), TL(256, 208), TL(256, 216), TL(256, 224), TL(256, 232),
    TL(256, 240), TL(256, 248), TL(256, 256), TL(320, 8), TL(320, 16), TL(320, 24), TL(320, 32), TL(320, 40),
    TL(320, 48), TL(320, 56), TL(320, 72), TL(320, 80), TL(320, 88), TL(320, 96), TL(320, 104), TL(320, 112),
    TL(320, 120), TL(320, 136), TL(320, 144), TL(320, 152), TL(320, 160), TL(320, 168), TL(320, 176), TL(320, 184),
    TL(320, 192), TL(320, 200), TL(384, 8), TL(384, 16), TL(384, 24), TL(384, 32), TL(384, 40), TL(384, 48),
    TL(384, 56), TL(384, 72), TL(384, 80), TL(384, 88), TL(384, 96), TL(384, 104), TL(384, 112), TL(384, 120),
    TL(384, 136), TL(384, 144), TL(384, 152), TL(384, 160), TL(384, 168), TL(448, 8), TL(448, 16), TL(448, 24),
    TL(448, 32), TL(448, 40), TL(448, 48), TL(448, 56), TL(448, 72), TL(448, 80), TL(448, 88), TL(448, 96),
    TL(448, 104), TL(448, 112), TL(448, 120), TL(448, 128), TL(448, 136), TL(448, 144), TL(512, 8), TL(512, 16),
    TL(512, 24), TL(512, 32), TL(512, 40), TL(512, 48), TL(512, 56), TL(512, 72), TL(512, 80), TL(512, 88),
    TL(512, 96), TL(512, 104), TL(512, 112), TL(512, 120), TL(512, 128), TL(576, 8), TL(576, 16), TL(576, 24),
    TL(576, 32), TL(576, 40), TL(576, 48), TL(576, 56), TL(576, 72), TL(576, 80), TL(576, 88), TL(576, 96),
    TL(576, 104), TL(576, 112), TL(640, 8), TL(640, 16), TL(640, 24), TL(640, 32), TL(640, 40), TL(640, 48),
    TL(640, 56), TL(640, 72), TL(640, 80), TL(640, 88), TL(640, 96), TL(704, 8), TL(704, 16), TL(704, 24),
    TL(704, 32), TL(704, 40), TL(704, 48), TL(704, 56), TL(704, 72), TL(704, 80), TL(704, 88), TL(768, 8),
    TL(768, 16), TL(768, 24), TL(768, 32), TL(768, 40), TL(768, 48), TL(768, 56), TL(768, 72), TL(768, 80),
    TL(256, 512), TL(256, 1024), TL(512, 512), TL(512, 1024),
};
#undef TL
#define ST(a, b) {CUBLASLT_MATMUL_STAGES_##a##x##b, #a "x" #b}
constexpr IdName kStagesNames[] = {
    ST(16, 1), ST(16, 2), ST(16, 3), ST(16, 4), ST(16, 5), ST(16, 6), ST(32, 1), ST(32, 2), ST(32, 3), ST(32, 4),
    ST(32, 5), ST(32, 6), ST(64, 1), ST(64, 2), ST(64, 3), ST(64, 4), ST(64, 5), ST(64, 6), ST(128, 1), ST(128, 2),
    ST(128, 3), ST(128, 4), ST(128, 5), ST(128, 6), ST(32, 10), ST(8, 4), ST(16, 10), ST(8, 5), ST(8, 3), ST(8, AUTO),
    ST(16, AUTO), ST(32, AUTO), ST(64, AUTO), ST(128, AUTO), ST(256, AUTO), ST(768, AUTO),
};
#undef ST
#if LAB_HAS_CLUSTER
#define CL(a, b, c) {CUBLASLT_CLUSTER_SHAPE_##a##x##b##x##c, #a "x" #b "x" #c}
constexpr IdName kClusterNames[] = {
    CL(1, 1, 1), CL(2, 1, 1), CL(4, 1, 1), CL(1, 2, 1), CL(2, 2, 1), CL(4, 2, 1), CL(1, 4, 1), CL(2, 4, 1),
    CL(4, 4, 1), CL(8, 1, 1), CL(1, 8, 1), CL(8, 2, 1), CL(2, 8, 1), CL(16, 1, 1), CL(1, 16, 1), CL(3, 1, 1),
    CL(5, 1, 1), CL(6, 1, 1), CL(7, 1, 1), CL(9, 1, 1), CL(10, 1, 1), CL(11, 1, 1), CL(12, 1, 1), CL(13, 1, 1),
    CL(14, 1, 1), CL(15, 1, 1), CL(3, 2, 1), CL(5, 2, 1), CL(6, 2, 1), CL(7, 2, 1), CL(1, 3, 1), CL(2, 3, 1),
    CL(3, 3, 1), CL(4, 3, 1), CL(5, 3, 1), CL(3, 4, 1), CL(1, 5, 1), CL(2, 5, 1), CL(3, 5, 1), CL(1, 6, 1),
    CL(2, 6, 1), CL(1, 7, 1), CL(2, 7, 1), CL(1, 9, 1), CL(1, 10, 1), CL(1, 11, 1), CL(1, 12, 1), CL(1, 13, 1),
    CL(1, 14, 1), CL(1, 15, 1),
};
#undef CL
#endif
#endif

std::string unknown_id(std::uint32_t id) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%u", id);
  return buf;
}
std::string tile_name(std::uint32_t id) {
  if (id == 0) return "undef";
#if LAB_HAS_NAME_TABLES
  for (const TileName& t : kTileNames)
    if (static_cast<std::uint32_t>(t.id) == id) return std::to_string(t.rows) + "x" + std::to_string(t.cols);
#endif
  return unknown_id(id);
}
std::string stages_name(std::uint32_t id) {
  if (id == 0) return "undef";
#if LAB_HAS_NAME_TABLES
  for (const IdName& s : kStagesNames)
    if (static_cast<std::uint32_t>(s.id) == id) return s.name;
#endif
  return unknown_id(id);
}
std::string cluster_name(std::uint32_t id) {
  if (id == 0) return "auto";
#if LAB_HAS_NAME_TABLES && LAB_HAS_CLUSTER
  for (const IdName& s : kClusterNames)
    if (static_cast<std::uint32_t>(s.id) == id) return s.name;
#endif
  return unknown_id(id);
}
const char* reduction_name(std::uint32_t r) {
  switch (r) {
    case CUBLASLT_REDUCTION_SCHEME_NONE: return "none";
    case CUBLASLT_REDUCTION_SCHEME_INPLACE: return "inplace";
    case CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE: return "compute";
    case CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE: return "output";
    default: return "?";
  }
}

// ---- host helpers ----------------------------------------------------------------------------------------------
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- device helpers ----------------------------------------------------------------------------------------------
__device__ __forceinline__ unsigned long long global_timer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Holds the stream until the host sets *flag (or timeout_ns passes: *timed_out = 1), so that the calls enqueued
// behind it run back to back.
__global__ void hold_stream(const volatile int* flag, int* timed_out, unsigned long long timeout_ns) {
  const unsigned long long t0 = global_timer_ns();
  while (*flag == 0) {
    if (global_timer_ns() - t0 > timeout_ns) {
      *timed_out = 1;
      return;
    }
  }
}

// stats[0] = bits of max |y - ref|, stats[1] = bits of max |ref| (non-negative floats order as their bits),
// stats[2] = number of elements where y or ref is not finite.
__global__ void compare_outputs(const __half* y, const __half* ref, std::size_t n, unsigned* stats) {
  float md = 0.f, mr = 0.f;
  unsigned bad = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const unsigned short yb = __half_as_ushort(y[i]), rb = __half_as_ushort(ref[i]);
    if ((yb & 0x7C00u) == 0x7C00u || (rb & 0x7C00u) == 0x7C00u) {
      ++bad;
      continue;
    }
    const float a = __half2float(y[i]), b = __half2float(ref[i]);
    md = fmaxf(md, fabsf(a - b));
    mr = fmaxf(mr, fabsf(b));
  }
  for (int o = 16; o > 0; o >>= 1) {
    md = fmaxf(md, __shfl_xor_sync(0xffffffffu, md, o));
    mr = fmaxf(mr, __shfl_xor_sync(0xffffffffu, mr, o));
    bad += __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(&stats[0], __float_as_uint(md));
    atomicMax(&stats[1], __float_as_uint(mr));
    if (bad) atomicAdd(&stats[2], bad);
  }
}

// ---- globals ---------------------------------------------------------------------------------------------------
constexpr std::size_t kWsBytes = 32u << 20;  // as the engine
constexpr double kTolHostRef = 1e-2;
constexpr double kTolCross = 2e-2;
constexpr int kHostSamples = 64;
constexpr int kHeurAllRequest = 200;
constexpr int kHeur16 = 16;
constexpr int kEngineMax = 20;  // the engine's Plan::kMaxCandidates
constexpr int kFinalHeur16 = 4, kFinalHeurAll = 8, kFinalExhaustive = 8, kTopPrinted = 5;
constexpr int kMaxAlgoIds = 512;
constexpr int kMaxCapIds = 1024;  // tile / stages ids of one algorithm (the enums have < 640)
constexpr int kCandMax = 32768;   // valid configurations of one stage before the round-robin cut
constexpr int kStage1Cap = 1500;
constexpr int kPoolCap = 3000;  // valid configurations per shape (stages 1 + 2)
constexpr int kStage2Bases = 16, kStage2HeurSeeds = 4;
constexpr long long kMaxChecks = 200000;  // cublasLtMatmulAlgoCheck calls per stage
constexpr unsigned long long kHoldTimeoutNs = 200ull * 1000 * 1000;

cudaStream_t g_stream;
cublasLtHandle_t g_lt;
void* g_ws = nullptr;
std::string g_gpu;
FILE* g_json = nullptr;
int g_iters = 200;
double g_budget_s = -1;  // per shape, for the exhaustive sweep; default 10 (5 with --quick)
bool g_quick = false, g_verbose = false;
int g_failures = 0;
cudaEvent_t g_e0, g_e1;
volatile int* g_flag_h = nullptr;  // hold_stream's release flag (host-mapped)
int* g_flag_d = nullptr;
volatile int* g_timeout_h = nullptr;  // hold_stream's timeout marker (host-mapped)
int* g_timeout_d = nullptr;
unsigned* g_stats = nullptr;  // compare_outputs

// ---- configurations ----------------------------------------------------------------------------------------------
struct Cfg {
  cublasLtMatmulAlgo_t algo{};
  std::int32_t algo_id = -1, splitk = 1;
  std::uint32_t tile = 0, stages = 0, red = 0, swizzle = 0, custom = 0, cluster = 0;
  std::size_t ws = 0;
  double screen_us = -1;  // < 0: not screened or failed
  double us = -1;         // precise; < 0: not timed
  double rel = -1;        // vs y_ref; < 0: not compared
  int iters = 0;
};

template <typename V>
V cfg_get(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr) {
  V v{};
  std::size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &v, sizeof v, &written) != CUBLAS_STATUS_SUCCESS) return V{};
  return v;
}
template <typename V>
bool cfg_set(cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr, V v) {
  return cublasLtMatmulAlgoConfigSetAttribute(&a, attr, &v, sizeof v) == CUBLAS_STATUS_SUCCESS;
}
template <typename V>
V cap_get(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr) {
  V v{};
  std::size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, &v, sizeof v, &written) != CUBLAS_STATUS_SUCCESS) return V{};
  return v;
}
// An array capability (TILE_IDS, STAGES_IDS): its entries, or 0 when there are none.
int cap_list(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr, std::uint32_t* out, int max) {
  std::size_t bytes = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS || bytes == 0)
    return 0;
  if (bytes > static_cast<std::size_t>(max) * sizeof(std::uint32_t)) {
    std::fprintf(stderr, "internal error: a capability list of %zu bytes\n", bytes);
    std::exit(2);
  }
  std::size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, out, bytes, &written) != CUBLAS_STATUS_SUCCESS) return 0;
  return static_cast<int>(written / sizeof(std::uint32_t));
}

// Reads a configuration's attributes from its algo.
void describe(Cfg& c) {
  c.algo_id = cfg_get<std::int32_t>(c.algo, CUBLASLT_ALGO_CONFIG_ID);
  c.tile = cfg_get<std::uint32_t>(c.algo, CUBLASLT_ALGO_CONFIG_TILE_ID);
  c.stages = cfg_get<std::uint32_t>(c.algo, CUBLASLT_ALGO_CONFIG_STAGES_ID);
  c.splitk = cfg_get<std::int32_t>(c.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM);
  c.red = cfg_get<std::uint32_t>(c.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME);
  c.swizzle = cfg_get<std::uint32_t>(c.algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING);
  c.custom = cfg_get<std::uint32_t>(c.algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION);
#if LAB_HAS_CLUSTER
  c.cluster = cfg_get<std::uint16_t>(c.algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID);
#endif
}

std::string cfg_str(const Cfg& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "id %d tile %s stages %s splitK %d red %s swz %u custom %u cluster %s ws %zu",
                c.algo_id, tile_name(c.tile).c_str(), stages_name(c.stages).c_str(), c.splitk, reduction_name(c.red),
                c.swizzle, c.custom, cluster_name(c.cluster).c_str(), c.ws);
  return buf;
}

// ---- one shape -----------------------------------------------------------------------------------------------------
enum class Epi { kNone, kBias, kGeluBias };
const char* epi_name(Epi e) { return e == Epi::kGeluBias ? "gelu_bias" : e == Epi::kBias ? "bias" : "none"; }

struct Product {
  const char* name;
  int N, K;
  Epi epi;
};
constexpr Product kProducts[] = {{"qkv", 2304, 768, Epi::kBias},
                                 {"proj", 768, 768, Epi::kBias},
                                 {"fc", 3072, 768, Epi::kGeluBias},
                                 {"mproj", 768, 3072, Epi::kBias},
                                 {"lm_head", 50304, 768, Epi::kNone}};
constexpr int kMs[] = {4096, 128};

struct Ctx {
  const Product* pr = nullptr;
  int M = 0, N = 0, K = 0;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  const __half* W = nullptr;
  const __half* X = nullptr;
  const __half* bias = nullptr;
  __half* y = nullptr;
  __half* yref = nullptr;
  double flop = 0;
  double best_screen = std::numeric_limits<double>::infinity();  // the probe's cutoff
  int reps = 10;                                                 // screen calls per configuration
  int timeouts = 0;                                              // hold_stream timeouts
  double host_ref_rel = -1;
};

// The engine's Gemm::plan, for fp16: descriptor, epilogue, the three layouts (and the bias pointer of Gemm::run).
void make_desc(Ctx& c) {
  CB(cublasLtMatmulDescCreate(&c.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CB(cublasLtMatmulDescSetAttribute(c.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CB(cublasLtMatmulDescSetAttribute(c.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  cublasLtEpilogue_t e = c.pr->epi == Epi::kGeluBias ? CUBLASLT_EPILOGUE_GELU_BIAS
                         : c.pr->epi == Epi::kBias   ? CUBLASLT_EPILOGUE_BIAS
                                                     : CUBLASLT_EPILOGUE_DEFAULT;
  CB(cublasLtMatmulDescSetAttribute(c.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
  CB(cublasLtMatrixLayoutCreate(&c.la, CUDA_R_16F, c.K, c.N, c.K));  // W: column-major [K][N], op T
  CB(cublasLtMatrixLayoutCreate(&c.lb, CUDA_R_16F, c.K, c.M, c.K));  // x: column-major [K][M]
  CB(cublasLtMatrixLayoutCreate(&c.lc, CUDA_R_16F, c.N, c.M, c.N));  // y: column-major [N][M] = row-major [M][N]
  if (c.pr->epi != Epi::kNone) {
    const void* bias = c.bias;
    CB(cublasLtMatmulDescSetAttribute(c.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
}
void destroy_desc(Ctx& c) {
  cublasLtMatrixLayoutDestroy(c.la);
  cublasLtMatrixLayoutDestroy(c.lb);
  cublasLtMatrixLayoutDestroy(c.lc);
  cublasLtMatmulDescDestroy(c.desc);
}

int heuristic(const Ctx& c, int requested, cublasLtMatmulHeuristicResult_t* out) {
  cublasLtMatmulPreference_t pref;
  CB(cublasLtMatmulPreferenceCreate(&pref));
  std::size_t ws = kWsBytes;
  CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(g_lt, c.desc, c.la, c.lb, c.lc, c.lc, pref, requested, out, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  return s == CUBLAS_STATUS_SUCCESS ? found : 0;
}

bool lt_call(const Ctx& c, const cublasLtMatmulAlgo_t& algo, __half* y) {
  static const float kOne = 1.f, kZero = 0.f;
  return cublasLtMatmul(g_lt, c.desc, &kOne, c.W, c.la, c.X, c.lb, &kZero, y, c.lc, y, c.lc, &algo, g_ws, kWsBytes,
                        g_stream) == CUBLAS_STATUS_SUCCESS;
}

// cublasLtMatmulAlgoCheck: status and state SUCCESS, workspace within the engine's 32 MiB.
bool validate(const Ctx& c, Cfg& cfg) {
  cublasLtMatmulHeuristicResult_t r{};
  if (cublasLtMatmulAlgoCheck(g_lt, c.desc, c.la, c.lb, c.lc, c.lc, &cfg.algo, &r) != CUBLAS_STATUS_SUCCESS)
    return false;
  if (r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > kWsBytes) return false;
  cfg.ws = r.workspaceSize;
  return true;
}

// ---- timing ------------------------------------------------------------------------------------------------------
// Graph length for a call of about est_us: --iters, fewer (>= 20) where a replay would pass 20 ms.
int iters_for(double est_us) {
  if (est_us <= 0) return g_iters;
  return std::min(g_iters, std::max(20, static_cast<int>(20000.0 / est_us)));
}

double precise(const Ctx& c, Cfg& cfg) {
  cfg.iters = iters_for(cfg.screen_us);
  cfg.us = time_graph_best(g_stream, [&](int) { return lt_call(c, cfg.algo, c.y); }, cfg.iters);
  return cfg.us;
}

enum class Screen { kFailed, kFull, kProbeOnly };

// The screen (see the header): eager call, probe, then c.reps calls held back by hold_stream so they run back to
// back. Sets cfg.screen_us (us / call; the probe's time for a config cut off after it).
Screen screen(Ctx& c, Cfg& cfg) {
  cfg.screen_us = -1;
  if (!lt_call(c, cfg.algo, c.y)) {
    (void)cudaGetLastError();
    return Screen::kFailed;
  }
  CK(cudaEventRecord(g_e0, g_stream));
  const bool probe_ok = lt_call(c, cfg.algo, c.y);
  CK(cudaEventRecord(g_e1, g_stream));
  CK(cudaEventSynchronize(g_e1));
  if (!probe_ok || cudaGetLastError() != cudaSuccess) {
    (void)cudaGetLastError();
    return Screen::kFailed;
  }
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, g_e0, g_e1));
  const double probe_us = 1e3 * ms;
  if (probe_us > std::max(3.0 * c.best_screen, c.best_screen + 20.0)) {
    cfg.screen_us = probe_us;
    return Screen::kProbeOnly;
  }
  *g_flag_h = 0;
  *g_timeout_h = 0;
  hold_stream<<<1, 1, 0, g_stream>>>(g_flag_d, g_timeout_d, kHoldTimeoutNs);
  CK(cudaGetLastError());
  CK(cudaEventRecord(g_e0, g_stream));
  bool ok = true;
  for (int r = 0; r < c.reps && ok; ++r) ok = lt_call(c, cfg.algo, c.y);
  CK(cudaEventRecord(g_e1, g_stream));
  *g_flag_h = 1;  // release: everything is enqueued
  CK(cudaEventSynchronize(g_e1));
  if (*g_timeout_h) ++c.timeouts;
  if (!ok || cudaGetLastError() != cudaSuccess) {
    (void)cudaGetLastError();
    return Screen::kFailed;
  }
  CK(cudaEventElapsedTime(&ms, g_e0, g_e1));
  cfg.screen_us = 1e3 * ms / c.reps;
  c.best_screen = std::min(c.best_screen, cfg.screen_us);
  return Screen::kFull;
}

struct ScreenStats {
  int full = 0, probe_only = 0, failed = 0, not_reached = 0;
  double seconds = 0;
  int screened() const { return full + probe_only; }
};

// Screens cfgs[0, n) in order until the deadline (the rest: not reached).
ScreenStats screen_all(Ctx& c, Cfg* cfgs, int n, Clock::time_point deadline) {
  ScreenStats st;
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    if (Clock::now() > deadline) {
      st.not_reached = n - i;
      break;
    }
    switch (screen(c, cfgs[i])) {
      case Screen::kFull: ++st.full; break;
      case Screen::kProbeOnly: ++st.probe_only; break;
      case Screen::kFailed: ++st.failed; break;
    }
  }
  st.seconds = seconds_since(t0);
  return st;
}

// ---- checks ------------------------------------------------------------------------------------------------------
// max |y - y_ref| / max |y_ref| over all outputs (infinity when any is not finite).
double compare_to_ref(const Ctx& c) {
  CK(cudaMemsetAsync(g_stats, 0, 3 * sizeof(unsigned), g_stream));
  const std::size_t n = static_cast<std::size_t>(c.M) * c.N;
  const int blocks = static_cast<int>(std::min<std::size_t>((n + 255) / 256, 4096));
  compare_outputs<<<blocks, 256, 0, g_stream>>>(c.y, c.yref, n, g_stats);
  CK(cudaGetLastError());
  unsigned h[3] = {0, 0, 0};
  CK(cudaMemcpyAsync(h, g_stats, sizeof h, cudaMemcpyDeviceToHost, g_stream));
  CK(cudaStreamSynchronize(g_stream));
  if (h[2] != 0) return std::numeric_limits<double>::infinity();
  float md = 0, mr = 0;
  std::memcpy(&md, &h[0], sizeof md);
  std::memcpy(&mr, &h[1], sizeof mr);
  if (mr > 0) return static_cast<double>(md) / mr;
  return md > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

// Runs cfg into y (prefilled with NaN bits) and compares with y_ref; a failure is reported and counted.
bool check_cfg(const Ctx& c, Cfg& cfg, const char* version) {
  CK(cudaMemsetAsync(c.y, 0xFF, static_cast<std::size_t>(c.M) * c.N * sizeof(__half), g_stream));
  if (!lt_call(c, cfg.algo, c.y) || cudaGetLastError() != cudaSuccess) {
    (void)cudaGetLastError();
    std::printf("  FAIL %s: cublasLtMatmul failed in the check (%s)\n", version, cfg_str(cfg).c_str());
    ++g_failures;
    return false;
  }
  cfg.rel = compare_to_ref(c);
  if (!(cfg.rel <= kTolCross)) {
    std::printf("  FAIL %s: max |y - y_ref| / max |y_ref| = %.3e > %.0e (%s)\n", version, cfg.rel, kTolCross,
                cfg_str(cfg).c_str());
    ++g_failures;
    return false;
  }
  return true;
}

// heur1's output (y_ref) against the host reference at kHostSamples (m, n).
bool host_check(Ctx& c, const std::vector<__half>& hx, const std::vector<__half>& hw, const std::vector<__half>& hb) {
  Rng rng(0xC0FFEEu + static_cast<std::uint64_t>(c.M) * 7919u + static_cast<std::uint64_t>(c.N));
  double max_diff = 0, max_ref = 0;
  bool finite = true;
  for (int s = 0; s < kHostSamples; ++s) {
    const int m = s == 0 || s == 2 ? 0 : s == 1 || s == 3 ? c.M - 1 : static_cast<int>(rng.next() % c.M);
    const int n = s == 0 || s == 3 ? 0 : s == 1 || s == 2 ? c.N - 1 : static_cast<int>(rng.next() % c.N);
    double acc = 0;
    for (int k = 0; k < c.K; ++k)
      acc += static_cast<double>(__half2float(hx[static_cast<std::size_t>(m) * c.K + k])) *
             static_cast<double>(__half2float(hw[static_cast<std::size_t>(n) * c.K + k]));
    if (c.pr->epi != Epi::kNone) acc += static_cast<double>(__half2float(hb[n]));
    if (c.pr->epi == Epi::kGeluBias) acc = gelu_ref(acc, true);
    __half g;
    CK(cudaMemcpy(&g, c.yref + static_cast<std::size_t>(m) * c.N + n, sizeof g, cudaMemcpyDeviceToHost));
    const double gv = __half2float(g);
    if (!std::isfinite(gv)) finite = false;
    max_diff = std::max(max_diff, std::fabs(gv - acc));
    max_ref = std::max(max_ref, std::fabs(acc));
  }
  c.host_ref_rel = finite ? (max_ref > 0 ? max_diff / max_ref : max_diff) : std::numeric_limits<double>::infinity();
  const bool ok = c.host_ref_rel <= kTolHostRef;
  std::printf("  host reference (%d samples) vs heur1: max |diff| / max |ref| = %.2e (tol %.0e) %s\n", kHostSamples,
              c.host_ref_rel, kTolHostRef, ok ? "ok" : "FAIL");
  if (!ok) ++g_failures;
  return ok;
}

// Checks and precisely times the k best-screened of cfgs[0, n); returns the indices of those that passed and were
// timed, fastest first.
std::vector<int> finalize(Ctx& c, Cfg* cfgs, int n, int k, const char* version) {
  std::vector<int> order;
  for (int i = 0; i < n; ++i)
    if (cfgs[i].screen_us >= 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cfgs[a].screen_us < cfgs[b].screen_us; });
  if (static_cast<int>(order.size()) > k) order.resize(k);
  std::vector<int> ranked;
  for (int i : order) {
    if (!check_cfg(c, cfgs[i], version)) continue;
    if (precise(c, cfgs[i]) < 0) {
      std::printf("  note: %s: a finalist could not be timed in a CUDA graph (%s)\n", version,
                  cfg_str(cfgs[i]).c_str());
      continue;
    }
    ranked.push_back(i);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return cfgs[a].us < cfgs[b].us; });
  return ranked;
}

// ---- the exhaustive sweep ------------------------------------------------------------------------------------------
// Configuration arrays live on the heap (allocated in main; plain arrays, not std::vector: nvcc 13.0's front end
// crashed on a std::vector of cublasLtMatmulAlgo_t, see the engine's Gemm::Plan).
Cfg* g_cand = nullptr;  // [kCandMax] valid configurations of one stage, grouped (algorithm id / base), before the cut
int* g_group = nullptr;  // [kCandMax]
Cfg* g_pool = nullptr;   // [kPoolCap] the configurations taken (stage 1, then stage 2)
std::uint32_t g_tiles[kMaxCapIds], g_stages[kMaxCapIds];

// Takes up to cap of cand[0, n) (groups are contiguous runs of equal group[]) round robin over the groups.
int round_robin(const Cfg* cand, const int* group, int n, Cfg* out, int cap) {
  std::vector<int> start, end;
  for (int i = 0; i < n; ++i) {
    if (i == 0 || group[i] != group[i - 1]) {
      start.push_back(i);
      end.push_back(i);
    }
    end.back() = i + 1;
  }
  int taken = 0;
  for (int r = 0; taken < cap; ++r) {
    bool any = false;
    for (std::size_t g = 0; g < start.size() && taken < cap; ++g)
      if (start[g] + r < end[g]) {
        out[taken++] = cand[start[g] + r];
        any = true;
      }
    if (!any) break;
  }
  return taken;
}

struct Base {
  std::int32_t id;
  std::uint32_t tile, stages;
  bool default_screened;  // its split-K 1 / swizzle 0 / custom 0 / cluster auto config is in the stage-1 pool
};

struct SweepResult {
  int n = 0;  // configurations in g_pool
  std::vector<int> ranked;
};

SweepResult exhaustive(Ctx& c, const Cfg& heur1, const Cfg* heur_all, int n_all) {
  SweepResult res;
  const Clock::time_point t0 = Clock::now();
  const auto at = [&](double frac) {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(frac * g_budget_s));
  };
  int ids[kMaxAlgoIds];
  int n_ids = 0;
  if (cublasLtMatmulAlgoGetIds(g_lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F,
                               kMaxAlgoIds, ids, &n_ids) != CUBLAS_STATUS_SUCCESS)
    n_ids = 0;

  // Stage 1: every (algorithm, tile, stages) with the other attributes at their defaults.
  const Clock::time_point check1_end = at(0.15);
  long long checks = 0, not_checked = 0, overflow = 0;
  int n_cand = 0, valid = 0;
  std::vector<int> valid_per_algo(n_ids, 0);
  for (int i = 0; i < n_ids; ++i) {
    cublasLtMatmulAlgo_t base{};
    if (cublasLtMatmulAlgoInit(g_lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F,
                               ids[i], &base) != CUBLAS_STATUS_SUCCESS)
      continue;
    int nt = cap_list(base, CUBLASLT_ALGO_CAP_TILE_IDS, g_tiles, kMaxCapIds);
    int ns = cap_list(base, CUBLASLT_ALGO_CAP_STAGES_IDS, g_stages, kMaxCapIds);
    const int listed_tiles = nt, listed_stages = ns;
    if (nt == 0) g_tiles[nt++] = CUBLASLT_MATMUL_TILE_UNDEFINED;
    if (ns == 0) g_stages[ns++] = CUBLASLT_MATMUL_STAGES_UNDEFINED;
    for (int t = 0; t < nt; ++t)
      for (int s = 0; s < ns; ++s) {
        if (checks >= kMaxChecks || Clock::now() > check1_end) {
          ++not_checked;
          continue;
        }
        Cfg cfg;
        cfg.algo = base;
        if (!cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_TILE_ID, g_tiles[t]) ||
            !cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, g_stages[s]))
          continue;
        ++checks;
        if (!validate(c, cfg)) continue;
        describe(cfg);
        ++valid;
        ++valid_per_algo[i];
        if (n_cand >= kCandMax) {
          ++overflow;
          continue;
        }
        g_cand[n_cand] = cfg;
        g_group[n_cand] = i;
        ++n_cand;
      }
    if (g_verbose)
      std::printf("    algo %3d: %3d tiles, %2d stages, splitK %d, reduction mask 0x%x, swizzle %u, custom max %d, "
                  "epilogue mask 0x%x: %d valid base configs\n",
                  ids[i], listed_tiles, listed_stages, cap_get<std::int32_t>(base, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT),
                  cap_get<std::uint32_t>(base, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK),
                  cap_get<std::uint32_t>(base, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT),
                  cap_get<std::int32_t>(base, CUBLASLT_ALGO_CAP_CUSTOM_OPTION_MAX),
                  cap_get<std::uint32_t>(base, CUBLASLT_ALGO_CAP_EPILOGUE_MASK), valid_per_algo[i]);
  }
  const int n1 = round_robin(g_cand, g_group, n_cand, g_pool, kStage1Cap);
  const ScreenStats s1 = screen_all(c, g_pool, n1, at(0.45));
  int algos_valid = 0;
  std::string per_algo;
  for (int i = 0; i < n_ids; ++i)
    if (valid_per_algo[i] > 0) {
      ++algos_valid;
      per_algo += " " + std::to_string(ids[i]) + ":" + std::to_string(valid_per_algo[i]);
    }
  std::printf("  exhaustive: %d algorithm ids, %d with valid base configs (id:count)%s\n", n_ids, algos_valid,
              per_algo.c_str());
  std::printf("    stage 1: %lld checked, %d valid (%lld not checked: budget / check cap; %lld over the buffer), "
              "%d taken (%d over the %d cap); screened %d (%d stopped after the probe), %d failed, %d not reached "
              "(budget), %.1f s\n",
              checks, valid, not_checked, overflow, n1, n_cand - n1, kStage1Cap, s1.screened(), s1.probe_only,
              s1.failed, s1.not_reached, s1.seconds);

  // Stage 2: the fastest bases (and the heuristic's best) over split-K, reduction, swizzle, custom option, cluster.
  std::vector<int> order;
  for (int i = 0; i < n1; ++i)
    if (g_pool[i].screen_us >= 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return g_pool[a].screen_us < g_pool[b].screen_us; });
  std::vector<Base> bases;
  const auto find_base = [&](std::int32_t id, std::uint32_t tile, std::uint32_t stages) {
    for (const Base& b : bases)
      if (b.id == id && b.tile == tile && b.stages == stages) return true;
    return false;
  };
  for (int i : order) {
    if (static_cast<int>(bases.size()) >= kStage2Bases) break;
    bases.push_back({g_pool[i].algo_id, g_pool[i].tile, g_pool[i].stages, true});
  }
  std::vector<int> heur_order;
  for (int i = 0; i < n_all; ++i)
    if (heur_all[i].screen_us >= 0) heur_order.push_back(i);
  std::stable_sort(heur_order.begin(), heur_order.end(),
                   [&](int a, int b) { return heur_all[a].screen_us < heur_all[b].screen_us; });
  if (static_cast<int>(heur_order.size()) > kStage2HeurSeeds) heur_order.resize(kStage2HeurSeeds);
  std::vector<const Cfg*> seeds = {&heur1};
  for (int i : heur_order) seeds.push_back(&heur_all[i]);
  for (const Cfg* s : seeds) {
    if (find_base(s->algo_id, s->tile, s->stages)) continue;
    bool screened = false;
    for (int i = 0; i < n1 && !screened; ++i)
      screened = g_pool[i].screen_us >= 0 && g_pool[i].algo_id == s->algo_id && g_pool[i].tile == s->tile &&
                 g_pool[i].stages == s->stages;
    bases.push_back({s->algo_id, s->tile, s->stages, screened});
  }
  std::vector<int> splits = {1, 2, 3, 4};
  if (c.M < 1024) {
    splits.push_back(8);
    splits.push_back(16);
  }
#if LAB_HAS_CLUSTER
  const std::uint16_t clusters[] = {CUBLASLT_CLUSTER_SHAPE_AUTO,   CUBLASLT_CLUSTER_SHAPE_1x1x1,
                                    CUBLASLT_CLUSTER_SHAPE_2x1x1,  CUBLASLT_CLUSTER_SHAPE_1x2x1,
                                    CUBLASLT_CLUSTER_SHAPE_2x2x1,  CUBLASLT_CLUSTER_SHAPE_4x1x1,
                                    CUBLASLT_CLUSTER_SHAPE_1x4x1};
#else
  const std::uint16_t clusters[] = {0};
#endif
  const Clock::time_point check2_end = at(0.55);
  long long checks2 = 0, not_checked2 = 0, overflow2 = 0;
  int valid2 = 0;
  n_cand = 0;
  for (std::size_t b = 0; b < bases.size(); ++b) {
    cublasLtMatmulAlgo_t a0{};
    if (cublasLtMatmulAlgoInit(g_lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F,
                               bases[b].id, &a0) != CUBLAS_STATUS_SUCCESS)
      continue;
    const bool splitk_ok = cap_get<std::int32_t>(a0, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT) != 0;
    const std::uint32_t red_mask = cap_get<std::uint32_t>(a0, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK);
    const std::uint32_t swz_max = cap_get<std::uint32_t>(a0, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT) ? 1u : 0u;
    const std::uint32_t custom_max = static_cast<std::uint32_t>(
        std::clamp(cap_get<std::int32_t>(a0, CUBLASLT_ALGO_CAP_CUSTOM_OPTION_MAX), 0, 3));
    if (!cfg_set<std::uint32_t>(a0, CUBLASLT_ALGO_CONFIG_TILE_ID, bases[b].tile) ||
        !cfg_set<std::uint32_t>(a0, CUBLASLT_ALGO_CONFIG_STAGES_ID, bases[b].stages))
      continue;
    for (int sk : splits) {
      if (sk > 1 && !splitk_ok) continue;
      std::uint32_t schemes[3];
      int n_schemes = 0;
      if (sk == 1) {
        schemes[n_schemes++] = CUBLASLT_REDUCTION_SCHEME_NONE;
      } else {
        if (red_mask & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)
          schemes[n_schemes++] = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        if (red_mask & CUBLASLT_REDUCTION_SCHEME_INPLACE) schemes[n_schemes++] = CUBLASLT_REDUCTION_SCHEME_INPLACE;
        schemes[n_schemes++] = CUBLASLT_REDUCTION_SCHEME_NONE;
      }
      for (int r = 0; r < n_schemes; ++r)
        for (std::uint32_t swz = 0; swz <= swz_max; ++swz)
          for (std::uint32_t co = 0; co <= custom_max; ++co)
            for (const std::uint16_t cl : clusters) {
              if (bases[b].default_screened && sk == 1 && swz == 0 && co == 0 && cl == 0) continue;
              if (checks2 >= kMaxChecks || Clock::now() > check2_end) {
                ++not_checked2;
                continue;
              }
              Cfg cfg;
              cfg.algo = a0;
              if (!cfg_set<std::int32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, sk) ||
                  !cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, schemes[r]) ||
                  !cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, swz) ||
                  !cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, co))
                continue;
#if LAB_HAS_CLUSTER
              if (!cfg_set<std::uint16_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, cl)) continue;
#endif
              ++checks2;
              if (!validate(c, cfg)) continue;
              describe(cfg);
              ++valid2;
              if (n_cand >= kCandMax) {
                ++overflow2;
                continue;
              }
              g_cand[n_cand] = cfg;
              g_group[n_cand] = static_cast<int>(b);
              ++n_cand;
            }
    }
  }
  const int n2 = round_robin(g_cand, g_group, n_cand, g_pool + n1, kPoolCap - n1);
  const ScreenStats s2 = screen_all(c, g_pool + n1, n2, at(1.0));
  std::printf("    stage 2: %zu bases (%d fastest + heur1 / best heuristic results not among them), %lld checked, %d "
              "valid (%lld not checked: budget / check cap; %lld over the buffer), %d taken (%d over the %d cap); "
              "screened %d (%d stopped after the probe), %d failed, %d not reached (budget), %.1f s\n",
              bases.size(), std::min(kStage2Bases, static_cast<int>(order.size())), checks2, valid2, not_checked2,
              overflow2, n2, n_cand - n2, kPoolCap, s2.screened(), s2.probe_only, s2.failed, s2.not_reached,
              s2.seconds);
  res.n = n1 + n2;
  res.ranked = finalize(c, g_pool, res.n, kFinalExhaustive, "exhaustive");
  std::printf("    sweep total %.1f s (budget %.0f s)\n", seconds_since(t0), g_budget_s);
  return res;
}

// ---- per shape ---------------------------------------------------------------------------------------------------
struct Version {
  const char* name = "";
  int candidates = 0, screened = 0;
  bool have = false;
  Cfg cfg;
};

struct Summary {
  int M;
  std::string product;
  double us[5];
  std::string best_cfg;
};
std::vector<Summary> g_summary;

void json_row(const Ctx& c, const char* version, int rank, const Version& v, const Cfg& cfg) {
  if (!g_json) return;
  std::fprintf(g_json,
               "{\"lab\":\"cublaslt\",\"gpu\":\"%s\",\"cublaslt\":%zu,\"M\":%d,\"N\":%d,\"K\":%d,\"product\":\"%s\","
               "\"epilogue\":\"%s\",\"version\":\"%s\",\"rank\":%d,\"us\":%.3f,\"tflops\":%.2f,\"iters\":%d,"
               "\"candidates\":%d,\"screened\":%d,\"screen_us\":%.3f,\"rel_diff\":%.3e,\"host_ref_rel\":%.3e,"
               "\"algo_id\":%d,\"tile\":%u,\"tile_name\":\"%s\",\"stages\":%u,\"stages_name\":\"%s\",\"splitk\":%d,"
               "\"reduction\":\"%s\",\"swizzle\":%u,\"custom\":%u,\"cluster\":%u,\"cluster_name\":\"%s\","
               "\"workspace\":%zu}\n",
               g_gpu.c_str(), cublasLtGetVersion(), c.M, c.N, c.K, c.pr->name, epi_name(c.pr->epi), version, rank,
               cfg.us, cfg.us > 0 ? c.flop / cfg.us * 1e-6 : 0.0, cfg.iters, v.candidates, v.screened, cfg.screen_us,
               cfg.rel, c.host_ref_rel, cfg.algo_id, cfg.tile, tile_name(cfg.tile).c_str(), cfg.stages,
               stages_name(cfg.stages).c_str(), cfg.splitk, reduction_name(cfg.red), cfg.swizzle, cfg.custom,
               cfg.cluster, cluster_name(cfg.cluster).c_str(), cfg.ws);
  std::fflush(g_json);
}

cublasLtMatmulHeuristicResult_t* g_heur_results = nullptr;  // [kHeurAllRequest]
Cfg* g_engine = nullptr;                                     // [kEngineMax]
Cfg* g_all = nullptr;                                        // [kHeurAllRequest]

struct DeviceBuffers {
  __half *x = nullptr, *w = nullptr, *bias = nullptr, *y = nullptr, *yref = nullptr;
};

void run_shape(const Product& pr, int M, const DeviceBuffers& buf) {
  Ctx c;
  c.pr = &pr;
  c.M = M;
  c.N = pr.N;
  c.K = pr.K;
  c.flop = 2.0 * M * pr.N * pr.K;
  c.W = buf.w;
  c.X = buf.x;
  c.bias = buf.bias;
  c.y = buf.y;
  c.yref = buf.yref;
  std::printf("\n--- M=%d %s (N=%d K=%d, epilogue %s): %.2f GFLOP / call ---\n", M, pr.name, pr.N, pr.K,
              epi_name(pr.epi), c.flop * 1e-9);

  // Inputs (host copies kept for the reference).
  Rng rng(static_cast<std::uint64_t>(M) * 131u + static_cast<std::uint64_t>(pr.N) * 17u + pr.K);
  std::vector<__half> hx(static_cast<std::size_t>(M) * pr.K), hw(static_cast<std::size_t>(pr.N) * pr.K), hb(pr.N);
  const float wscale = 1.f / std::sqrt(static_cast<float>(pr.K));
  for (auto& v : hx) v = __float2half_rn(rng.uni());
  for (auto& v : hw) v = __float2half_rn(rng.uni() * wscale);
  for (auto& v : hb) v = __float2half_rn(0.5f * rng.uni());
  CK(cudaMemcpy(buf.x, hx.data(), hx.size() * sizeof(__half), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(buf.w, hw.data(), hw.size() * sizeof(__half), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(buf.bias, hb.data(), hb.size() * sizeof(__half), cudaMemcpyHostToDevice));
  make_desc(c);

  Version v[5];
  v[0].name = "heur1";
  v[1].name = "engine-tune";
  v[2].name = "heur16+sk";
  v[3].name = "heurAll";
  v[4].name = "exhaustive";

  // heur1 -> y_ref.
  if (heuristic(c, 1, g_heur_results) < 1) {
    std::printf("  FAIL: the heuristic returned no algorithm\n");
    ++g_failures;
    destroy_desc(c);
    return;
  }
  Cfg& h1 = v[0].cfg;
  h1.algo = g_heur_results[0].algo;
  h1.ws = g_heur_results[0].workspaceSize;
  describe(h1);
  CK(cudaMemsetAsync(c.yref, 0xFF, static_cast<std::size_t>(M) * pr.N * sizeof(__half), g_stream));
  if (!lt_call(c, h1.algo, c.yref) || cudaGetLastError() != cudaSuccess) {
    (void)cudaGetLastError();
    std::printf("  FAIL: heur1 does not run (%s)\n", cfg_str(h1).c_str());
    ++g_failures;
    destroy_desc(c);
    return;
  }
  CK(cudaStreamSynchronize(g_stream));
  host_check(c, hx, hw, hb);
  h1.rel = 0;

  // Screen length from heur1's eager time.
  {
    for (int i = 0; i < 2; ++i) (void)lt_call(c, h1.algo, c.y);
    CK(cudaEventRecord(g_e0, g_stream));
    for (int i = 0; i < 3; ++i) (void)lt_call(c, h1.algo, c.y);
    CK(cudaEventRecord(g_e1, g_stream));
    CK(cudaEventSynchronize(g_e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, g_e0, g_e1));
    const double est = std::max(1.0, 1e3 * ms / 3);
    c.reps = std::clamp(static_cast<int>(2000.0 / est), 3, 20);
  }
  v[0].candidates = 1;
  if (screen(c, h1) != Screen::kFailed) v[0].screened = 1;
  v[0].have = precise(c, h1) > 0;

  // The engine's candidates: top 16 + split-K 2/4/8/16 of the first (Gemm::plan).
  const int found16 = heuristic(c, kHeur16, g_heur_results);
  int n_eng = 0;
  for (int i = 0; i < found16; ++i)
    if (g_heur_results[i].state == CUBLAS_STATUS_SUCCESS) {
      g_engine[n_eng] = Cfg{};
      g_engine[n_eng].algo = g_heur_results[i].algo;
      g_engine[n_eng].ws = g_heur_results[i].workspaceSize;
      describe(g_engine[n_eng]);
      ++n_eng;
    }
  int n_split = 0;
  for (int split : {2, 4, 8, 16}) {
    if (n_eng >= kEngineMax || found16 < 1) break;
    Cfg cfg;
    cfg.algo = g_heur_results[0].algo;
    if (!cfg_set<std::int32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, split) ||
        !cfg_set<std::uint32_t>(cfg.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE))
      continue;
    if (!validate(c, cfg)) continue;
    describe(cfg);
    g_engine[n_eng++] = cfg;
    ++n_split;
  }
  // engine-tune: the engine's own pick among them (one call, then 5 timed eager calls each; default: the first).
  if (n_eng > 0) {
    float best = 1e30f;
    int pick = 0;
    for (int i = 0; i < n_eng; ++i) {
      if (!lt_call(c, g_engine[i].algo, c.y)) {
        (void)cudaGetLastError();
        continue;
      }
      CK(cudaEventRecord(g_e0, g_stream));
      bool ok = true;
      for (int r = 0; r < 5 && ok; ++r) ok = lt_call(c, g_engine[i].algo, c.y);
      CK(cudaEventRecord(g_e1, g_stream));
      CK(cudaEventSynchronize(g_e1));
      (void)cudaGetLastError();
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, g_e0, g_e1));
      if (ok && ms < best) {
        best = ms;
        pick = i;
      }
    }
    v[1].candidates = n_eng;
    v[1].cfg = g_engine[pick];
    if (screen(c, v[1].cfg) != Screen::kFailed) v[1].screened = 1;
    v[1].have = check_cfg(c, v[1].cfg, "engine-tune") && precise(c, v[1].cfg) > 0;
  }
  // heur16+sk
  {
    ScreenStats st = screen_all(c, g_engine, n_eng, Clock::time_point::max());
    v[2].candidates = n_eng;
    v[2].screened = st.screened();
    const std::vector<int> ranked = finalize(c, g_engine, n_eng, kFinalHeur16, "heur16+sk");
    if (!ranked.empty()) {
      v[2].cfg = g_engine[ranked[0]];
      v[2].have = true;
    }
  }
  // heurAll
  const int found_all = heuristic(c, kHeurAllRequest, g_heur_results);
  int n_all = 0;
  for (int i = 0; i < found_all; ++i)
    if (g_heur_results[i].state == CUBLAS_STATUS_SUCCESS) {
      g_all[n_all] = Cfg{};
      g_all[n_all].algo = g_heur_results[i].algo;
      g_all[n_all].ws = g_heur_results[i].workspaceSize;
      describe(g_all[n_all]);
      ++n_all;
    }
  std::printf("  heuristic: %d results for %d requested (%d with state SUCCESS); top %d: %d, + %d split-K variants of "
              "the first = %d engine candidates\n",
              found_all, kHeurAllRequest, n_all, kHeur16, found16, n_split, n_eng);
  {
    ScreenStats st = screen_all(c, g_all, n_all, Clock::time_point::max());
    v[3].candidates = n_all;
    v[3].screened = st.screened();
    const std::vector<int> ranked = finalize(c, g_all, n_all, kFinalHeurAll, "heurAll");
    if (!ranked.empty()) {
      v[3].cfg = g_all[ranked[0]];
      v[3].have = true;
    }
  }
  // exhaustive
  const SweepResult sweep = exhaustive(c, h1, g_all, n_all);
  v[4].candidates = sweep.n;
  for (int i = 0; i < sweep.n; ++i)
    if (g_pool[i].screen_us >= 0) ++v[4].screened;
  if (!sweep.ranked.empty()) {
    v[4].cfg = g_pool[sweep.ranked[0]];
    v[4].have = true;
  }
  if (c.timeouts)
    std::printf("  note: the screen's hold kernel timed out %d times (those screens may include launch gaps)\n",
                c.timeouts);

  // Report.
  const double ref_us = v[2].have ? v[2].cfg.us : -1;
  std::printf("  %-12s %6s %8s %9s %8s %9s %9s  %s\n", "version", "cands", "screened", "us/call", "TFLOP/s",
              "h16sk/x", "rel diff", "config");
  Summary sum{M, pr.name, {-1, -1, -1, -1, -1}, ""};
  for (int i = 0; i < 5; ++i) {
    if (!v[i].have) {
      std::printf("  %-12s %6d %8d %9s\n", v[i].name, v[i].candidates, v[i].screened, "-");
      continue;
    }
    const Cfg& cfg = v[i].cfg;
    std::printf("  %-12s %6d %8d %9.2f %8.1f %9.3f %9.2e  %s\n", v[i].name, v[i].candidates, v[i].screened, cfg.us,
                c.flop / cfg.us * 1e-6, ref_us > 0 ? ref_us / cfg.us : 0.0, cfg.rel, cfg_str(cfg).c_str());
    json_row(c, v[i].name, 1, v[i], cfg);
    sum.us[i] = cfg.us;
  }
  if (!sweep.ranked.empty()) {
    std::printf("  top %d exhaustive configs (precise, checked):\n", kTopPrinted);
    std::printf("    %2s %9s %8s %5s %9s %8s %6s %8s %4s %6s %7s %9s %9s\n", "#", "us/call", "TFLOP/s", "algo", "tile",
                "stages", "splitK", "red", "swz", "custom", "cluster", "ws bytes", "rel diff");
    for (std::size_t r = 0; r < sweep.ranked.size() && static_cast<int>(r) < kTopPrinted; ++r) {
      const Cfg& cfg = g_pool[sweep.ranked[r]];
      std::printf("    %2zu %9.2f %8.1f %5d %9s %8s %6d %8s %4u %6u %7s %9zu %9.2e\n", r + 1, cfg.us,
                  c.flop / cfg.us * 1e-6, cfg.algo_id, tile_name(cfg.tile).c_str(), stages_name(cfg.stages).c_str(),
                  cfg.splitk, reduction_name(cfg.red), cfg.swizzle, cfg.custom, cluster_name(cfg.cluster).c_str(),
                  cfg.ws, cfg.rel);
      json_row(c, "exhaustive_top", static_cast<int>(r) + 1, v[4], cfg);
    }
    sum.best_cfg = cfg_str(g_pool[sweep.ranked[0]]);
  }
  g_summary.push_back(sum);
  destroy_desc(c);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (const int taken = common_option(argc, argv, i, g_json, g_iters); taken != 0) {
      if (taken < 0) return 2;
    } else if (!std::strcmp(argv[i], "--budget") && i + 1 < argc) {
      g_budget_s = std::max(0.5, std::atof(argv[++i]));
    } else if (!std::strcmp(argv[i], "--quick")) {
      g_quick = true;
    } else if (!std::strcmp(argv[i], "--verbose")) {
      g_verbose = true;
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--json FILE] [--quick] [--budget SECONDS] [--verbose]\n",
                   argv[0]);
      return 2;
    }
  }
  if (g_budget_s < 0) g_budget_s = g_quick ? 5.0 : 10.0;
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  g_gpu = prop.name;
  std::printf("cublaslt_lab on %s (%d SMs, %.0f MB L2, sm_%d%d), cuBLASLt %zu; %d iterations per precise timing, "
              "exhaustive budget %.0f s per shape%s\n",
              prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1e6, prop.major, prop.minor, cublasLtGetVersion(),
              g_iters, g_budget_s, g_quick ? " (--quick)" : "");
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  CB(cublasLtCreate(&g_lt));
  CK(cudaMalloc(&g_ws, kWsBytes));
  CK(cudaEventCreate(&g_e0));
  CK(cudaEventCreate(&g_e1));
  CK(cudaMalloc(&g_stats, 3 * sizeof(unsigned)));
  g_cand = new Cfg[kCandMax];
  g_group = new int[kCandMax];
  g_pool = new Cfg[kPoolCap];
  g_heur_results = new cublasLtMatmulHeuristicResult_t[kHeurAllRequest];
  g_engine = new Cfg[kEngineMax];
  g_all = new Cfg[kHeurAllRequest];
  {
    int* p = nullptr;
    CK(cudaHostAlloc(&p, 2 * sizeof(int), cudaHostAllocMapped));
    p[0] = p[1] = 0;
    g_flag_h = p;
    g_timeout_h = p + 1;
    int* d = nullptr;
    CK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&d), p, 0));
    g_flag_d = d;
    g_timeout_d = d + 1;
  }

  struct Job {
    const Product* pr;
    int M;
  };
  std::vector<Job> jobs;
  for (int M : kMs)
    for (const Product& pr : kProducts)
      if (!g_quick || (M == 4096 && (!std::strcmp(pr.name, "qkv") || !std::strcmp(pr.name, "proj"))))
        jobs.push_back({&pr, M});
  std::size_t max_x = 0, max_w = 0, max_n = 0, max_y = 0;
  for (const Job& j : jobs) {
    max_x = std::max(max_x, static_cast<std::size_t>(j.M) * j.pr->K);
    max_w = std::max(max_w, static_cast<std::size_t>(j.pr->N) * j.pr->K);
    max_n = std::max(max_n, static_cast<std::size_t>(j.pr->N));
    max_y = std::max(max_y, static_cast<std::size_t>(j.M) * j.pr->N);
  }
  DeviceBuffers buf;
  CK(cudaMalloc(&buf.x, max_x * sizeof(__half)));
  CK(cudaMalloc(&buf.w, max_w * sizeof(__half)));
  CK(cudaMalloc(&buf.bias, max_n * sizeof(__half)));
  CK(cudaMalloc(&buf.y, max_y * sizeof(__half)));
  CK(cudaMalloc(&buf.yref, max_y * sizeof(__half)));

  const Clock::time_point t0 = Clock::now();
  for (const Job& j : jobs) run_shape(*j.pr, j.M, buf);

  std::printf("\n=== summary: us / call (precise), x = heur16+sk / exhaustive (the engine's autotune at its best vs "
              "the sweep) ===\n");
  std::printf("  %5s %-8s %9s %12s %10s %9s %11s %7s  %s\n", "M", "product", "heur1", "engine-tune", "heur16+sk",
              "heurAll", "exhaustive", "x", "best exhaustive config");
  for (const Summary& s : g_summary)
    std::printf("  %5d %-8s %9.2f %12.2f %10.2f %9.2f %11.2f %7.3f  %s\n", s.M, s.product.c_str(), s.us[0], s.us[1],
                s.us[2], s.us[3], s.us[4], s.us[2] > 0 && s.us[4] > 0 ? s.us[2] / s.us[4] : 0.0,
                s.best_cfg.c_str());
  std::printf("\n%s (%d failures), %.1f s\n", g_failures ? "FAILED" : "ALL CHECKS PASSED", g_failures,
              seconds_since(t0));
  if (g_json) std::fclose(g_json);
  for (void* p : {static_cast<void*>(buf.x), static_cast<void*>(buf.w), static_cast<void*>(buf.bias),
                  static_cast<void*>(buf.y), static_cast<void*>(buf.yref)})
    CK(cudaFree(p));
  CK(cudaFree(g_stats));
  CK(cudaFreeHost(const_cast<int*>(g_flag_h)));
  delete[] g_cand;
  delete[] g_group;
  delete[] g_pool;
  delete[] g_heur_results;
  delete[] g_engine;
  delete[] g_all;
  cudaEventDestroy(g_e0);
  cudaEventDestroy(g_e1);
  cudaFree(g_ws);
  cublasLtDestroy(g_lt);
  cudaStreamDestroy(g_stream);
  return g_failures ? 1 : 0;
}
