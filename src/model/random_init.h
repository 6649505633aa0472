#pragma once
// Random weights of an exact GPT-2-family shape, for speed work where the trained weights cannot be had (the
// `init-random` checkpoints, benchmarks, tests). GPT-2's own initialisation, as transformers does it:
// N(0, 0.02) for matrices and embeddings, the residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 ·
// n_layer)), biases 0, LayerNorm weights 1. Deterministic for a seed.
#include <cstdint>
#include <string>

#include "model/checkpoint.h"

namespace gptbench {

void randomize_weights(const Gpt2Config& config, Gpt2Weights& weights, std::uint64_t seed);

// An in-memory model of a known shape (gpt2_shape_by_name) with such weights, marked untrained, its identity
// filled in as load_model would (name "<shape>-random"). Throws Error for an unknown shape.
Gpt2Model make_random_model(const std::string& shape, std::uint64_t seed = 1234);

}  // namespace gptbench
