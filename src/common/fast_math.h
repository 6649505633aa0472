#pragma once
// Element-wise kernels of the CPU engine: exp by range reduction + a degree-6 polynomial (relative error about
// 2e-7), and what is built on it (gelu_new, softmax, log-sum-exp). They use AVX2 + FMA, which the project's
// baseline (-march=x86-64-v3) guarantees: written as plain loops, GCC would not vectorise them (float compares
// may trap, float sums may not be reordered), and the log-softmax over a 50,257-word vocabulary for every scored
// token is the largest element-wise cost of a perplexity pass. A scalar path keeps other targets building.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GPTBENCH_FAST_MATH_AVX2 1
#endif

namespace gptbench {

namespace exp_constants {
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kMin = -87.0f, kMax = 88.0f;
constexpr float kP[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
}  // namespace exp_constants

// exp(x) for x in [-87, 88]; inputs outside are clamped to that range.
inline float fast_exp(float x) {
  using namespace exp_constants;
  x = std::fmin(std::fmax(x, kMin), kMax);
  const float n = std::nearbyint(x * kLog2e);
  const float r = x - n * kLn2Hi - n * kLn2Lo;  // |r| <= ln2/2
  float p = kP[0];
  for (int i = 1; i < 7; ++i) p = p * r + kP[i];
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

#ifdef GPTBENCH_FAST_MATH_AVX2
inline __m256 fast_exp8(__m256 x) {
  using namespace exp_constants;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kMin)), _mm256_set1_ps(kMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP[i]));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline double horizontal_sum_pd(__m256 v) {  // widened to double before adding
  __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  __m256d s = _mm256_add_pd(lo, hi);
  __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
#endif

// GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with tanh(u) = 1 - 2 / (exp(2u) + 1).
inline void gelu_new_inplace(float* x, std::int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f, kCubic = 0.044715f;
  std::int64_t i = 0;
#ifdef GPTBENCH_FAST_MATH_AVX2
  const __m256 c0 = _mm256_set1_ps(kSqrt2OverPi), c1 = _mm256_set1_ps(kCubic), one = _mm256_set1_ps(1.0f),
               two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    const __m256 u = _mm256_mul_ps(c0, _mm256_fmadd_ps(c1, v3, v));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(fast_exp8(_mm256_mul_ps(two, u)), one)));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
  }
#endif
  for (; i < n; ++i) {
    const float v = x[i];
    const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
    const float t = 1.0f - 2.0f / (fast_exp(2.0f * u) + 1.0f);
    x[i] = 0.5f * v * (1.0f + t);
  }
}

inline float max_of(const float* x, std::int64_t n) {
  float m = x[0];
  std::int64_t i = 0;
#ifdef GPTBENCH_FAST_MATH_AVX2
  if (n >= 8) {
    __m256 vm = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    m = horizontal_max(vm);
  }
#endif
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Sum of a row, float lanes folded into double every 64 vectors.
inline double sum_of(const float* x, std::int64_t n) {
  double total = 0.0;
  std::int64_t i = 0;
#ifdef GPTBENCH_FAST_MATH_AVX2
  while (i + 8 <= n) {
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < 64 && i + 8 <= n; ++k, i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    total += horizontal_sum_pd(acc);
  }
#endif
  for (; i < n; ++i) total += x[i];
  return total;
}

// Index of the first maximum of a row (the lowest id wins ties).
inline std::int64_t argmax_of(const float* x, std::int64_t n) {
  const float m = max_of(x, n);
  std::int64_t i = 0;
  while (i < n && x[i] != m) ++i;  // a NaN maximum matches nothing: then 0
  return i < n ? i : 0;
}

// Sum of exp(x[i] - shift): exponentials in float, partial sums of at most 64 terms per lane folded into double.
inline double sum_exp_shifted(const float* x, std::int64_t n, float shift) {
  double total = 0.0;
  std::int64_t i = 0;
#ifdef GPTBENCH_FAST_MATH_AVX2
  const __m256 s = _mm256_set1_ps(shift);
  while (i + 8 <= n) {
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < 64 && i + 8 <= n; ++k, i += 8) acc = _mm256_add_ps(acc, fast_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    total += horizontal_sum_pd(acc);
  }
#endif
  for (; i < n; ++i) total += fast_exp(x[i] - shift);
  return total;
}

// log(sum(exp(x))) of one row, safe against overflow (the row's maximum is subtracted first).
inline double log_sum_exp(const float* x, std::int64_t n) {
  const float m = max_of(x, n);
  return std::log(sum_exp_shifted(x, n, m)) + static_cast<double>(m);
}

// In-place softmax of one row.
inline void softmax_inplace(float* x, std::int64_t n) {
  const float m = max_of(x, n);
  std::int64_t i = 0;
  double sum = 0.0;
#ifdef GPTBENCH_FAST_MATH_AVX2
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const __m256 e = fast_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  sum = horizontal_sum_pd(acc);
#endif
  for (; i < n; ++i) {
    x[i] = fast_exp(x[i] - m);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (std::int64_t k = 0; k < n; ++k) x[k] *= inv;
}

}  // namespace gptbench
