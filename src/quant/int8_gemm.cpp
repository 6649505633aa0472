#include "quant/int8_gemm.h"

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* placeholders); not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace gptbench {
namespace {

constexpr int kPanel = kInt8PanelWidth;
constexpr int kRowsPerTile = 6;  // 6 rows × 4 vectors = 24 accumulators of the 32 zmm registers

std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }

inline std::int32_t load_i32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Everything a tile needs to finish its outputs: y = (acc - compensation[n]) · column_scale[n] + bias[n].
struct Epilogue {
  const float* column_scale;       // [panels * 64], activation scale folded in
  const std::int32_t* compensation;  // [panels * 64] or null (AVX2 computes signed products directly)
  const float* bias;               // [panels * 64] or null
};

// ---------------------------------------------------------------- AVX-512 VNNI

#define GPTBENCH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

template <int MR>
GPTBENCH_AVX512 void w8a8_tile_avx512(const std::uint8_t* a, std::int64_t lda, const std::int8_t* panel,
                                      std::int64_t k4s, float* y, std::int64_t ldy, int valid_cols,
                                      const float* scale, const std::int32_t* comp, const float* bias) {
  __m512i acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_si512();
  for (std::int64_t k4 = 0; k4 < k4s; ++k4) {
    const std::int8_t* wp = panel + k4 * 256;
    const __m512i w0 = _mm512_loadu_si512(wp);
    const __m512i w1 = _mm512_loadu_si512(wp + 64);
    const __m512i w2 = _mm512_loadu_si512(wp + 128);
    const __m512i w3 = _mm512_loadu_si512(wp + 192);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(load_i32(a + r * lda + k4 * 4));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, w1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], av, w2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], av, w3);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const int n0 = j * 16;
    if (n0 >= valid_cols) break;
    const __mmask16 mask = valid_cols - n0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (valid_cols - n0)) - 1);
    const __m512i c = _mm512_loadu_si512(comp + n0);
    const __m512 s = _mm512_loadu_ps(scale + n0);
    const __m512 b = bias ? _mm512_loadu_ps(bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], c)), s, b);
      _mm512_mask_storeu_ps(y + r * ldy + n0, mask, v);
    }
  }
}

template <int MR>
GPTBENCH_AVX512 void weight_only_tile_avx512(const float* x, std::int64_t ldx, const std::int8_t* panel,
                                             std::int64_t in, float* y, std::int64_t ldy, int valid_cols,
                                             const float* scale, const float* bias) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (std::int64_t k = 0; k < in; ++k) {
    const std::int8_t* wp = panel + k * kPanel;
    const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp))));
    const __m512 w1 =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + 16))));
    const __m512 w2 =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + 32))));
    const __m512 w3 =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + 48))));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * ldx + k]);
      acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(xv, w3, acc[r][3]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const int n0 = j * 16;
    if (n0 >= valid_cols) break;
    const __mmask16 mask = valid_cols - n0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (valid_cols - n0)) - 1);
    const __m512 s = _mm512_loadu_ps(scale + n0);
    const __m512 b = bias ? _mm512_loadu_ps(bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(y + r * ldy + n0, mask, _mm512_fmadd_ps(acc[r][j], s, b));
  }
}

// ---------------------------------------------------------------- AVX2

// Stores the first `valid` of 8 floats.
inline void store_partial(float* dst, __m256 v, int valid) {
  if (valid >= 8) {
    _mm256_storeu_ps(dst, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < valid; ++i) dst[i] = tmp[i];
  }
}

// One 16-column block of a panel at a time: MR rows × 2 ymm accumulators.
template <int MR>
void w8a8_tile_avx2(const std::uint8_t* a, std::int64_t lda, const std::int8_t* panel, std::int64_t k4s, float* y,
                    std::int64_t ldy, int valid_cols, const float* scale, const float* bias) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int j = 0; j < 4; ++j) {
    const int n0 = j * 16;
    if (n0 >= valid_cols) break;
    __m256i acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (std::int64_t k4 = 0; k4 < k4s; ++k4) {
      const std::int8_t* wp = panel + k4 * 256 + j * 64;
      const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
      const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 32));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        // u8 (q + 128) back to s8 q; then a·w = |a| · (w · sign(a)) with |a| as the unsigned operand.
        const __m256i av = _mm256_xor_si256(_mm256_set1_epi32(load_i32(a + r * lda + k4 * 4)), offset);
        const __m256i a_abs = _mm256_abs_epi8(av);
        const __m256i p_lo = _mm256_maddubs_epi16(a_abs, _mm256_sign_epi8(w_lo, av));
        const __m256i p_hi = _mm256_maddubs_epi16(a_abs, _mm256_sign_epi8(w_hi, av));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p_lo, ones16));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p_hi, ones16));
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int c0 = n0 + h * 8;
      if (c0 >= valid_cols) break;
      const __m256 s = _mm256_loadu_ps(scale + c0);
      const __m256 b = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps();
      for (int r = 0; r < MR; ++r)
        store_partial(y + r * ldy + c0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][h]), s, b), valid_cols - c0);
    }
  }
}

template <int MR>
void weight_only_tile_avx2(const float* x, std::int64_t ldx, const std::int8_t* panel, std::int64_t in, float* y,
                           std::int64_t ldy, int valid_cols, const float* scale, const float* bias) {
  for (int j = 0; j < 4; ++j) {
    const int n0 = j * 16;
    if (n0 >= valid_cols) break;
    __m256 acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (std::int64_t k = 0; k < in; ++k) {
      const std::int8_t* wp = panel + k * kPanel + n0;
      const __m256 w_lo =
          _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wp))));
      const __m256 w_hi =
          _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wp + 8))));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 xv = _mm256_broadcast_ss(x + r * ldx + k);
        acc[r][0] = _mm256_fmadd_ps(xv, w_lo, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(xv, w_hi, acc[r][1]);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int c0 = n0 + h * 8;
      if (c0 >= valid_cols) break;
      const __m256 s = _mm256_loadu_ps(scale + c0);
      const __m256 b = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps();
      for (int r = 0; r < MR; ++r) store_partial(y + r * ldy + c0, _mm256_fmadd_ps(acc[r][h], s, b), valid_cols - c0);
    }
  }
}

// ---------------------------------------------------------------- drivers

// Work is split into (panel, block of rows) tasks: one task per panel when there are enough panels to keep every
// thread busy, otherwise the rows are split too (small N, e.g. the attention output projection at 768 columns).
struct TaskGrid {
  std::int64_t panels, row_block, row_blocks;
  std::int64_t count() const { return panels * row_blocks; }
};

TaskGrid make_grid(std::int64_t rows, std::int64_t panels, int threads) {
  TaskGrid g{panels, rows, 1};
  const std::int64_t wanted = 4 * static_cast<std::int64_t>(threads);
  if (threads > 1 && panels < wanted && rows > kRowsPerTile) {
    const std::int64_t splits = std::min((wanted + panels - 1) / panels, (rows + kRowsPerTile - 1) / kRowsPerTile);
    g.row_block = round_up((rows + splits - 1) / splits, kRowsPerTile);
    g.row_blocks = (rows + g.row_block - 1) / g.row_block;
  }
  return g;
}

template <typename Tile>
void for_row_tiles(std::int64_t r0, std::int64_t r1, Tile&& tile) {
  std::int64_t r = r0;
  for (; r + kRowsPerTile <= r1; r += kRowsPerTile) tile(r, std::integral_constant<int, kRowsPerTile>{});
  switch (r1 - r) {
    case 5: tile(r, std::integral_constant<int, 5>{}); break;
    case 4: tile(r, std::integral_constant<int, 4>{}); break;
    case 3: tile(r, std::integral_constant<int, 3>{}); break;
    case 2: tile(r, std::integral_constant<int, 2>{}); break;
    case 1: tile(r, std::integral_constant<int, 1>{}); break;
    default: break;
  }
}

GPTBENCH_AVX512 void w8a8_task_avx512(const std::uint8_t* xq, std::int64_t r0, std::int64_t r1, const PackedW8A8& w,
                                      std::int64_t p, const Epilogue& e, float* y) {
  const std::int64_t k4s = w.in_padded / 4;
  const std::int8_t* panel = w.data.data() + p * w.in_padded * kPanel;
  const int valid = static_cast<int>(std::min<std::int64_t>(kPanel, w.out - p * kPanel));
  const std::int64_t c0 = p * kPanel;
  for_row_tiles(r0, r1, [&](std::int64_t r, auto mr) {
    w8a8_tile_avx512<decltype(mr)::value>(xq + r * w.in_padded, w.in_padded, panel, k4s, y + r * w.out + c0, w.out,
                                          valid, e.column_scale + c0, e.compensation + c0,
                                          e.bias ? e.bias + c0 : nullptr);
  });
}

void w8a8_task_avx2(const std::uint8_t* xq, std::int64_t r0, std::int64_t r1, const PackedW8A8& w, std::int64_t p,
                    const Epilogue& e, float* y) {
  const std::int64_t k4s = w.in_padded / 4;
  const std::int8_t* panel = w.data.data() + p * w.in_padded * kPanel;
  const int valid = static_cast<int>(std::min<std::int64_t>(kPanel, w.out - p * kPanel));
  const std::int64_t c0 = p * kPanel;
  for_row_tiles(r0, r1, [&](std::int64_t r, auto mr) {
    // 4 rows at most: 4 × 2 accumulators + operands fit the 16 ymm registers.
    constexpr int MR = decltype(mr)::value;
    if constexpr (MR > 4) {
      w8a8_tile_avx2<4>(xq + r * w.in_padded, w.in_padded, panel, k4s, y + r * w.out + c0, w.out, valid,
                        e.column_scale + c0, e.bias ? e.bias + c0 : nullptr);
      w8a8_tile_avx2<MR - 4>(xq + (r + 4) * w.in_padded, w.in_padded, panel, k4s, y + (r + 4) * w.out + c0, w.out,
                             valid, e.column_scale + c0, e.bias ? e.bias + c0 : nullptr);
    } else {
      w8a8_tile_avx2<MR>(xq + r * w.in_padded, w.in_padded, panel, k4s, y + r * w.out + c0, w.out, valid,
                         e.column_scale + c0, e.bias ? e.bias + c0 : nullptr);
    }
  });
}

GPTBENCH_AVX512 void weight_only_task_avx512(const float* x, std::int64_t r0, std::int64_t r1,
                                             const PackedWeightOnly& w, std::int64_t p, const float* scale,
                                             const float* bias, float* y) {
  const std::int8_t* panel = w.data.data() + p * w.in * kPanel;
  const int valid = static_cast<int>(std::min<std::int64_t>(kPanel, w.out - p * kPanel));
  const std::int64_t c0 = p * kPanel;
  for_row_tiles(r0, r1, [&](std::int64_t r, auto mr) {
    weight_only_tile_avx512<decltype(mr)::value>(x + r * w.in, w.in, panel, w.in, y + r * w.out + c0, w.out, valid,
                                                 scale + c0, bias ? bias + c0 : nullptr);
  });
}

void weight_only_task_avx2(const float* x, std::int64_t r0, std::int64_t r1, const PackedWeightOnly& w,
                           std::int64_t p, const float* scale, const float* bias, float* y) {
  const std::int8_t* panel = w.data.data() + p * w.in * kPanel;
  const int valid = static_cast<int>(std::min<std::int64_t>(kPanel, w.out - p * kPanel));
  const std::int64_t c0 = p * kPanel;
  for_row_tiles(r0, r1, [&](std::int64_t r, auto mr) {
    constexpr int MR = decltype(mr)::value;
    if constexpr (MR > 4) {
      weight_only_tile_avx2<4>(x + r * w.in, w.in, panel, w.in, y + r * w.out + c0, w.out, valid, scale + c0,
                               bias ? bias + c0 : nullptr);
      weight_only_tile_avx2<MR - 4>(x + (r + 4) * w.in, w.in, panel, w.in, y + (r + 4) * w.out + c0, w.out, valid,
                                    scale + c0, bias ? bias + c0 : nullptr);
    } else {
      weight_only_tile_avx2<MR>(x + r * w.in, w.in, panel, w.in, y + r * w.out + c0, w.out, valid, scale + c0,
                                bias ? bias + c0 : nullptr);
    }
  });
}

Int8Isa resolve_isa(Int8Isa isa) {
  if (isa == Int8Isa::kAuto) return best_int8_isa();
  if (!int8_isa_supported(isa)) throw Error("int8 kernels: " + int8_isa_name(isa) + " is not supported by this CPU");
  return isa;
}

// Per-call scratch (the quantized activations, the padded epilogue vectors), kept per calling thread so the
// forward pass does not allocate and page-fault megabytes on every projection.
struct Scratch {
  std::vector<std::uint8_t> xq;
  std::vector<float> scale, bias;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

const float* padded_bias(const float* bias, std::int64_t out, std::int64_t padded, std::vector<float>& buf) {
  if (bias == nullptr) return nullptr;
  buf.assign(static_cast<std::size_t>(padded), 0.0f);
  std::copy(bias, bias + out, buf.begin());
  return buf.data();
}

}  // namespace

bool int8_isa_supported(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kAuto: return true;
    case Int8Isa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Int8Isa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

bool cpu_has_vnni() { return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni"); }

Int8Isa best_int8_isa() {
  static const Int8Isa best = int8_isa_supported(Int8Isa::kAvx512Vnni) ? Int8Isa::kAvx512Vnni : Int8Isa::kAvx2;
  return best;
}

std::string int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kAuto: return "auto(" + int8_isa_name(best_int8_isa()) + ")";
    case Int8Isa::kAvx512Vnni: return "avx512-vnni";
    case Int8Isa::kAvx2: return "avx2";
  }
  return "?";
}

PerChannelInt8 quantize_per_output_channel(const float* w, std::int64_t in, std::int64_t out, bool transposed) {
  PerChannelInt8 r;
  r.in = in;
  r.out = out;
  r.q.assign(static_cast<std::size_t>(in * out), 0);
  r.scales.assign(static_cast<std::size_t>(out), 1.0f);
  auto at = [&](std::int64_t k, std::int64_t n) { return transposed ? w[n * in + k] : w[k * out + n]; };
  std::vector<float> amax(static_cast<std::size_t>(out), 0.0f);
  if (transposed) {
    for (std::int64_t n = 0; n < out; ++n) amax[n] = max_abs(w + n * in, in);
  } else {
    for (std::int64_t k = 0; k < in; ++k)
      for (std::int64_t n = 0; n < out; ++n) amax[n] = std::max(amax[n], std::fabs(w[k * out + n]));
  }
  for (std::int64_t n = 0; n < out; ++n)
    if (amax[n] > 0.0f) r.scales[n] = amax[n] / 127.0f;
  auto quantize = [&](std::int64_t k, std::int64_t n) {
    const float v = std::nearbyint(at(k, n) / r.scales[n]);
    r.q[k * out + n] = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
  };
  // Walk the source in its own order (the LM head is 50257 rows of 768).
  if (transposed) {
    for (std::int64_t n = 0; n < out; ++n)
      for (std::int64_t k = 0; k < in; ++k) quantize(k, n);
  } else {
    for (std::int64_t k = 0; k < in; ++k)
      for (std::int64_t n = 0; n < out; ++n) quantize(k, n);
  }
  return r;
}

PackedW8A8 pack_w8a8(const PerChannelInt8& wq) {
  PackedW8A8 p;
  p.in = wq.in;
  p.out = wq.out;
  p.in_padded = round_up(wq.in, 4);
  p.panels = (wq.out + kPanel - 1) / kPanel;
  p.data.assign(static_cast<std::size_t>(p.panels * p.in_padded * kPanel), 0);
  p.scales.assign(static_cast<std::size_t>(p.panels * kPanel), 0.0f);
  p.compensation.assign(static_cast<std::size_t>(p.panels * kPanel), 0);
  // Rows of q in order (reading a 50257-wide LM head column by column would miss the cache on every byte).
  for (std::int64_t k = 0; k < wq.in; ++k) {
    const std::int8_t* row = wq.q.data() + k * wq.out;
    for (std::int64_t n = 0; n < wq.out; ++n) {
      const std::int64_t panel = n / kPanel, block = (n % kPanel) / 16, lane = n % 16;
      p.data[panel * p.in_padded * kPanel + (k / 4) * 256 + block * 64 + lane * 4 + (k % 4)] = row[n];
      p.compensation[n] += 128 * row[n];
    }
  }
  std::copy(wq.scales.begin(), wq.scales.end(), p.scales.begin());
  return p;
}

PackedWeightOnly pack_weight_only(const PerChannelInt8& wq) {
  PackedWeightOnly p;
  p.in = wq.in;
  p.out = wq.out;
  p.panels = (wq.out + kPanel - 1) / kPanel;
  p.data.assign(static_cast<std::size_t>(p.panels * p.in * kPanel), 0);
  p.scales.assign(static_cast<std::size_t>(p.panels * kPanel), 0.0f);
  for (std::int64_t k = 0; k < wq.in; ++k)
    for (std::int64_t n = 0; n < wq.out; ++n)
      p.data[(n / kPanel) * p.in * kPanel + k * kPanel + n % kPanel] = wq.q[k * wq.out + n];
  std::copy(wq.scales.begin(), wq.scales.end(), p.scales.begin());
  return p;
}

float max_abs(const float* x, std::int64_t n) {
  __m256 m = _mm256_setzero_ps();
  const __m256 sign = _mm256_set1_ps(-0.0f);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = 0.0f;
  for (float v : lanes) r = std::max(r, v);
  for (; i < n; ++i) r = std::max(r, std::fabs(x[i]));
  return r;
}

void quantize_activations_u8(const float* x, std::int64_t rows, std::int64_t in, std::int64_t in_padded, float scale,
                             std::uint8_t* out) {
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256i offset = _mm256_set1_epi32(128);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    std::uint8_t* o = out + r * in_padded;
    std::int64_t k = 0;
    for (; k + 8 <= in; k += 8) {
      // Round to nearest even, as std::nearbyint does in the default rounding mode.
      __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + k), vinv),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), offset);  // 1..255
      alignas(32) std::int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), q);
      for (int i = 0; i < 8; ++i) o[k + i] = static_cast<std::uint8_t>(lanes[i]);
    }
    for (; k < in; ++k) {
      const float v = std::clamp(std::nearbyint(xr[k] * inv), -127.0f, 127.0f);
      o[k] = static_cast<std::uint8_t>(static_cast<int>(v) + 128);
    }
    for (; k < in_padded; ++k) o[k] = 128;
  }
}

void gemm_w8a8_u8(const std::uint8_t* xq, std::int64_t rows, const PackedW8A8& w, float activation_scale,
                  const float* bias, float* y, int threads, Int8Isa isa) {
  if (rows <= 0) return;
  isa = resolve_isa(isa);
  threads = resolve_int8_threads(threads);
  const std::int64_t padded = w.panels * kPanel;
  // Separate buffers from the activation scratch: xq may be that scratch.
  std::vector<float> column_scale(static_cast<std::size_t>(padded));
  for (std::int64_t n = 0; n < padded; ++n) column_scale[n] = w.scales[n] * activation_scale;
  std::vector<float> bias_buf;
  const Epilogue e{column_scale.data(), w.compensation.data(), padded_bias(bias, w.out, padded, bias_buf)};
  const TaskGrid grid = make_grid(rows, w.panels, threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t t = 0; t < grid.count(); ++t) {
    const std::int64_t p = t / grid.row_blocks, rb = t % grid.row_blocks;
    const std::int64_t r0 = rb * grid.row_block, r1 = std::min(rows, r0 + grid.row_block);
    if (isa == Int8Isa::kAvx512Vnni)
      w8a8_task_avx512(xq, r0, r1, w, p, e, y);
    else
      w8a8_task_avx2(xq, r0, r1, w, p, e, y);
  }
}

void gemm_w8a8(const float* x, std::int64_t rows, const PackedW8A8& w, float activation_scale, const float* bias,
               float* y, int threads, Int8Isa isa) {
  if (rows <= 0) return;
  if (!(activation_scale > 0.0f)) {
    const float amax = max_abs(x, rows * w.in);
    activation_scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  }
  auto& s = scratch();
  s.xq.resize(static_cast<std::size_t>(rows * w.in_padded));
  quantize_activations_u8(x, rows, w.in, w.in_padded, activation_scale, s.xq.data());
  gemm_w8a8_u8(s.xq.data(), rows, w, activation_scale, bias, y, threads, isa);
}

void gemm_weight_only(const float* x, std::int64_t rows, const PackedWeightOnly& w, const float* bias, float* y,
                      int threads, Int8Isa isa) {
  if (rows <= 0) return;
  isa = resolve_isa(isa);
  threads = resolve_int8_threads(threads);
  const std::int64_t padded = w.panels * kPanel;
  auto& s = scratch();
  const float* b = padded_bias(bias, w.out, padded, s.bias);
  const TaskGrid grid = make_grid(rows, w.panels, threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t t = 0; t < grid.count(); ++t) {
    const std::int64_t p = t / grid.row_blocks, rb = t % grid.row_blocks;
    const std::int64_t r0 = rb * grid.row_block, r1 = std::min(rows, r0 + grid.row_block);
    if (isa == Int8Isa::kAvx512Vnni)
      weight_only_task_avx512(x, r0, r1, w, p, w.scales.data(), b, y);
    else
      weight_only_task_avx2(x, r0, r1, w, p, w.scales.data(), b, y);
  }
}

// The INT8 kernels run on OpenMP, like oneDNN and the rest of the native engine: one set of threads, none
// spinning against another's.
int resolve_int8_threads(int requested) {
  const int max = omp_get_max_threads();
  return requested <= 0 || requested > max ? max : requested;
}

}  // namespace gptbench
