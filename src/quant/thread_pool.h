#pragma once
// A small persistent pool of worker threads for the INT8 kernels. Spawning threads per matrix product would cost
// tens of microseconds, which is the whole runtime of a decode-step projection, so the workers live for the
// process and sleep between calls.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gptbench {

class ThreadPool {
 public:
  explicit ThreadPool(int workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs task(i) for every i in [0, tasks) on at most `threads` threads, the caller included; returns when all
  // are done. threads <= 0 means every worker. Calls from several threads are served one after the other.
  void parallel_for(std::int64_t tasks, int threads, const std::function<void(std::int64_t)>& task);

  int max_threads() const { return static_cast<int>(workers_.size()) + 1; }

 private:
  void worker_loop(int index);
  void drain();

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::uint64_t generation_ = 0;
  int active_workers_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  const std::function<void(std::int64_t)>* task_ = nullptr;
  std::int64_t task_count_ = 0;
  std::int64_t next_task_ = 0;  // guarded by mutex_ in drain()
};

// The pool the INT8 kernels use: hardware_concurrency() threads in all (the caller plus workers).
ThreadPool& int8_thread_pool();

// Threads a kernel uses when asked for `requested` (<= 0: all the pool has).
int resolve_int8_threads(int requested);

}  // namespace gptbench
