// parallel_tasks: static contiguous split of independent tasks over a persistent set of threads.
// Each task writes only its own outputs, so the split never changes a result. The helper threads
// are started once and kept (about 170 parallel calls make one training step; starting a thread per
// call cost a tenth of the step on the 2-core VM, in thread creation and stack page faults).
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace evotrain {

// Helper threads that each run part w of the current job; the caller runs part 0. One job at a
// time: callers on several threads (two Node workers training) take turns.
class PartPool {
 public:
  static PartPool& instance() {
    static PartPool pool;
    return pool;
  }

  // Runs part(w) for w in [0, parts), part 0 on the calling thread, and returns when all are done.
  void run(int64_t parts, const std::function<void(int64_t)>& part) {
    std::lock_guard<std::mutex> job(job_mutex_);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int64_t>(threads_.size()) < parts - 1) {
        const int64_t w = static_cast<int64_t>(threads_.size()) + 1;
        threads_.emplace_back([this, w] { loop(w); });
      }
      part_ = &part;
      parts_ = parts;
      remaining_ = parts - 1;
      ++generation_;
    }
    wake_.notify_all();
    part(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return remaining_ == 0; });
    part_ = nullptr;
  }

  ~PartPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  PartPool() = default;

  void loop(int64_t w) {
    int64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (w >= parts_) continue;  // this job needs fewer threads
      const std::function<void(int64_t)>* part = part_;
      lock.unlock();
      (*part)(w);
      lock.lock();
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t)>* part_ = nullptr;
  int64_t parts_ = 0;
  int64_t remaining_ = 0;
  int64_t generation_ = 0;
  bool stop_ = false;
};

template <class F>
void parallel_tasks(int64_t tasks, int threads, F body) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, tasks));
  if (workers == 1) {
    for (int64_t t = 0; t < tasks; ++t) body(t);
    return;
  }
  const std::function<void(int64_t)> part = [&](int64_t w) {
    const int64_t lo = tasks * w / workers, hi = tasks * (w + 1) / workers;
    for (int64_t t = lo; t < hi; ++t) body(t);
  };
  PartPool::instance().run(workers, part);
}

}  // namespace evotrain
