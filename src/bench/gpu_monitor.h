#pragma once
// GPU facts and sampling through NVML, loaded with dlopen("libnvidia-ml.so.1") at run time so that nothing links
// against it: on a machine without an NVIDIA driver every function here reports "absent" and the run goes on.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace gptbench::bench {

struct GpuInfo {
  std::string name;
  std::string driver;
  std::int64_t memory_bytes = 0;
};

// Every GPU NVML sees (empty when NVML or the driver is absent).
std::vector<GpuInfo> gpu_inventory();

// Samples SM clock, temperature and power of GPU `index` every `interval_seconds` in a thread, so throttling
// during a cell is visible in its records. start() does nothing when NVML is absent.
class GpuSampler {
 public:
  GpuSampler() = default;
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  bool start(int index, double interval_seconds);  // false when NVML is absent
  // Stops sampling and returns [{"t_s", "sm_clock_mhz", "temp_c", "power_w"}] (t_s since start()).
  nlohmann::json stop();

 private:
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex mutex_;
  nlohmann::json samples_ = nlohmann::json::array();
};

}  // namespace gptbench::bench
