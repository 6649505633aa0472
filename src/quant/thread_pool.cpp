#include "quant/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace gptbench {

ThreadPool::ThreadPool(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims tasks one at a time until none are left. Tasks are coarse (a panel of output columns), so a
// mutex-guarded counter costs nothing measurable.
void ThreadPool::drain() {
  for (;;) {
    std::int64_t i;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_task_ >= task_count_) return;
      i = next_task_++;
    }
    (*task_)(i);
  }
}

void ThreadPool::worker_loop(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= active_workers_) continue;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(std::int64_t tasks, int threads, const std::function<void(std::int64_t)>& task) {
  if (tasks <= 0) return;
  const int max = max_threads();
  if (threads <= 0 || threads > max) threads = max;
  const int helpers = static_cast<int>(std::min<std::int64_t>(threads - 1, tasks - 1));
  if (helpers <= 0) {
    for (std::int64_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    task_count_ = tasks;
    next_task_ = 0;
    active_workers_ = helpers;
    pending_ = helpers;
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  task_ = nullptr;
}

ThreadPool& int8_thread_pool() {
  static ThreadPool pool(std::max(1u, std::thread::hardware_concurrency()) - 1);
  return pool;
}

int resolve_int8_threads(int requested) {
  const int max = int8_thread_pool().max_threads();
  return requested <= 0 || requested > max ? max : requested;
}

}  // namespace gptbench
