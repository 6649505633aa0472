#include "bench/gpu_monitor.h"

#include <dlfcn.h>

#include <chrono>

namespace gptbench::bench {

namespace {

// The few NVML entry points used, with the C signatures of nvml.h (NVML's ABI is stable across drivers).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
constexpr int kNvmlClockSm = 1;
constexpr int kNvmlTemperatureGpu = 0;

struct NvmlApi {
  bool ok = false;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*device_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*device_name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*driver_version)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*memory_info)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*clock_info)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned int*) = nullptr;
};

template <typename F>
bool load_symbol(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

// Loaded once; the library stays open for the life of the process.
const NvmlApi& nvml() {
  static const NvmlApi api = [] {
    NvmlApi a;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return a;
    bool found = load_symbol(lib, "nvmlInit_v2", a.init) && load_symbol(lib, "nvmlDeviceGetCount_v2", a.device_count) &&
                 load_symbol(lib, "nvmlDeviceGetHandleByIndex_v2", a.handle_by_index) &&
                 load_symbol(lib, "nvmlDeviceGetName", a.device_name) &&
                 load_symbol(lib, "nvmlSystemGetDriverVersion", a.driver_version) &&
                 load_symbol(lib, "nvmlDeviceGetMemoryInfo", a.memory_info) &&
                 load_symbol(lib, "nvmlDeviceGetClockInfo", a.clock_info) &&
                 load_symbol(lib, "nvmlDeviceGetTemperature", a.temperature) &&
                 load_symbol(lib, "nvmlDeviceGetPowerUsage", a.power_usage);
    a.ok = found && a.init() == 0;
    return a;
  }();
  return api;
}

}  // namespace

std::vector<GpuInfo> gpu_inventory() {
  std::vector<GpuInfo> out;
  const NvmlApi& api = nvml();
  if (!api.ok) return out;
  unsigned int count = 0;
  if (api.device_count(&count) != 0) return out;
  char driver[96] = {0};
  api.driver_version(driver, sizeof(driver));
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t device = nullptr;
    if (api.handle_by_index(i, &device) != 0) continue;
    GpuInfo info;
    char name[128] = {0};
    if (api.device_name(device, name, sizeof(name)) == 0) info.name = name;
    info.driver = driver;
    NvmlMemory memory{};
    if (api.memory_info(device, &memory) == 0) info.memory_bytes = static_cast<std::int64_t>(memory.total);
    out.push_back(info);
  }
  return out;
}

GpuSampler::~GpuSampler() { stop(); }

bool GpuSampler::start(int index, double interval_seconds) {
  stop();
  const NvmlApi& api = nvml();
  if (!api.ok) return false;
  nvmlDevice_t device = nullptr;
  if (api.handle_by_index(static_cast<unsigned int>(index), &device) != 0) return false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    samples_ = nlohmann::json::array();
  }
  running_ = true;
  thread_ = std::thread([this, device, interval_seconds, &api] {
    const auto t0 = std::chrono::steady_clock::now();
    const auto interval = std::chrono::duration<double>(interval_seconds);
    auto next = t0;
    while (running_) {
      unsigned int clock = 0, temp = 0, milliwatts = 0;
      nlohmann::json s;
      s["t_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (api.clock_info(device, kNvmlClockSm, &clock) == 0) s["sm_clock_mhz"] = clock;
      if (api.temperature(device, kNvmlTemperatureGpu, &temp) == 0) s["temp_c"] = temp;
      if (api.power_usage(device, &milliwatts) == 0) s["power_w"] = milliwatts / 1000.0;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        samples_.push_back(std::move(s));
      }
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
      // Sleep in short slices so stop() returns promptly.
      while (running_ && std::chrono::steady_clock::now() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  return true;
}

nlohmann::json GpuSampler::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json out = samples_;
  samples_ = nlohmann::json::array();
  return out;
}

}  // namespace gptbench::bench
