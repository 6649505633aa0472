#pragma once
// The sanity gates: named checks that decide whether a run's numbers can be true. Each looks at the run folder
// only and returns pass / fail / warn / skip, a one-line summary and the numbers behind it. A single failed gate
// makes the run INVALID. The rules and thresholds are documented in docs/gates.md.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checks/run_data.h"

namespace gptbench {

enum class GateStatus { pass, fail, warn, skip };
std::string to_string(GateStatus s);

struct GateResult {
  int id = 0;
  std::string name;
  GateStatus status = GateStatus::skip;
  std::string summary;  // one line
  nlohmann::json details = nlohmann::json::object();
};

struct GateThresholds {
  double artifact_band_low = 0.9;          // gate 2: bytes >= low * parameters * bytes/param
  double artifact_band_high = 1.3;         // gate 2: bytes <= high * (parameters + untied head) * bytes/param
  double ppl_max_vocab_fraction = 0.1;     // gate 3: ppl must be below vocab_size * this
  double known_band_reference_pct = 1.0;   // gate 3: gpt2-tiny-wt2 vs its PyTorch reference at ctx1024/stride512
  double agreement_pct_fp32 = 0.1;         // gate 4
  double agreement_pct_half = 0.5;         // gate 4: fp16 / bf16
  double agreement_pct_int8 = 2.0;         // gate 4
  double max_roofline_pct = 100.0;         // gate 5: above this share of the floor is impossible
  double stability_cv_warn = 0.05;         // gate 6
  int min_repetitions = 3;                 // gate 6: fewer gives no usable confidence interval
  double calibration_overlap_max = 0.05;  // gate 7: share of sampled calibration lines found in the eval text
  double caching_max_speedup = 0.10;       // gate 8: repeated input at most 10 % faster than fresh
  double timed_checksum_rel_tol = 1e-3;    // gate 9: checksums of one cell's timed calls
  double bottleneck_cv_note = 0.025;       // gate 10 (as trtexec)
  double host_bound_roofline_pct = 2.0;    // gate 10: GPU cells under this share of the floor are overhead-bound
  double throttle_clock_drop = 0.10;       // gate 10: SM clock falling more than this within a cell
};

// All ten gates, in order (ids 1..10).
std::vector<GateResult> evaluate_gates(const RunData& run, const GateThresholds& t = {});

// Each gate on its own (what evaluate_gates calls).
GateResult gate_model_identity(const RunData& run, const GateThresholds& t);
GateResult gate_artifact_sizes(const RunData& run, const GateThresholds& t);
GateResult gate_perplexity_plausibility(const RunData& run, const GateThresholds& t);
GateResult gate_cross_backend_agreement(const RunData& run, const GateThresholds& t);
GateResult gate_physical_plausibility(const RunData& run, const GateThresholds& t);
GateResult gate_stability(const RunData& run, const GateThresholds& t);
GateResult gate_data_hygiene(const RunData& run, const GateThresholds& t);
GateResult gate_caching_audit(const RunData& run, const GateThresholds& t);
GateResult gate_timed_accuracy(const RunData& run, const GateThresholds& t);
GateResult gate_bottleneck_notes(const RunData& run, const GateThresholds& t);

bool any_failed(const std::vector<GateResult>& gates);
std::string verdict(const std::vector<GateResult>& gates);  // "VALID" or "INVALID"
// processed/gates.json as docs/run-format.md defines it.
nlohmann::json gates_to_json(const std::vector<GateResult>& gates);

// Known parameter counts (Hugging Face counting, tied head once); 0 when the name is unknown.
std::int64_t known_model_parameters(const std::string& model_name);

}  // namespace gptbench
