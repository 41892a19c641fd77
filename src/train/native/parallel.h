// parallel_tasks: static contiguous split of independent tasks over std::threads. Each task writes
// only its own outputs, so the split never changes a result.
#pragma once
#include <algorithm>
#include <thread>
#include <vector>

namespace evotrain {

template <class F>
void parallel_tasks(int64_t tasks, int threads, F body) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, tasks));
  if (workers == 1) {
    for (int64_t t = 0; t < tasks; ++t) body(t);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  auto run = [&](int64_t w) {
    const int64_t lo = tasks * w / workers, hi = tasks * (w + 1) / workers;
    for (int64_t t = lo; t < hi; ++t) body(t);
  };
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& th : pool) th.join();
}

}  // namespace evotrain
