// Vector layouts: a tensor seen as [outer, len, inner] holds outer·inner vectors of `len`
// elements each (stride `inner`). Flattened = [1, n, 1]; rows of a matrix = [rows, cols, 1];
// columns = [1, rows, cols]. Twin: layout.ts.
#pragma once

#include <algorithm>
#include <cstdint>

namespace evomerge {

// Calls fn(j0, j1, vec0, step) over maximal runs of [start, end) in which element j belongs to
// vector vec0 + step·(j − j0): step 0 when vectors are contiguous (inner == 1), else 1.
template <class Fn>
void for_each_run(int64_t len, int64_t inner, int64_t start, int64_t end, Fn&& fn) {
  int64_t j = start;
  if (inner == 1) {
    while (j < end) {
      const int64_t o = j / len;
      const int64_t j1 = std::min(end, (o + 1) * len);
      fn(j, j1, o, 0);
      j = j1;
    }
    return;
  }
  while (j < end) {
    const int64_t line = j / inner;
    const int64_t o = line / len;
    const int64_t i0 = j - line * inner;
    const int64_t j1 = std::min(end, (line + 1) * inner);
    fn(j, j1, o * inner + i0, 1);
    j = j1;
  }
}

}  // namespace evomerge
