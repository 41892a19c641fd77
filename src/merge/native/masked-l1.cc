#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Four f64 lanes of ascending element index, lane (j + k) & 3 = k & 3 since blocks start at
// multiples of 4. The block's |δ| and kept |δ| are computed first in f32 (exact: the f64 of an f32's
// absolute value is the absolute value of its f64), then added lane by lane: the same additions in
// the same order as one element at a time, in a shape the compiler vectorises.
inline void add_lanes(double* __restrict acc, const float* __restrict v, int64_t n, int64_t j) {
  double a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    a0 += static_cast<double>(v[k]);
    a1 += static_cast<double>(v[k + 1]);
    a2 += static_cast<double>(v[k + 2]);
    a3 += static_cast<double>(v[k + 3]);
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
  for (; k < n; ++k) acc[(j + k) & 3] += static_cast<double>(v[k]);
}

template <class R>
void masked_l1_impl(const MaskedL1Params& p) {
  std::vector<float> b(kBlock), x(kBlock), kept_abs(kBlock);
  std::vector<uint8_t> kept_flags(kBlock);
  BlockMasker masker(p.mask);
  double all[4] = {0, 0, 0, 0}, kept[4] = {0, 0, 0, 0};
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    float* __restrict d = x.data();
    for (int64_t k = 0; k < n; ++k) d[k] = std::fabs(R::r(d[k] - b[k]));
    add_lanes(all, d, n, j);
    if (masker.active()) {
      // A dropped entry adds +0, which changes no sum: the sums are never −0.
      const uint8_t* m = masker.block(j, n, d, kept_flags.data());
      float* __restrict kd = kept_abs.data();
      for (int64_t k = 0; k < n; ++k) kd[k] = m[k] != 0 ? d[k] : 0.0f;
      add_lanes(kept, kd, n, j);
    }
  }
  p.out[0] = (all[0] + all[1]) + (all[2] + all[3]);
  p.out[1] = !masker.active() ? p.out[0] : (kept[0] + kept[1]) + (kept[2] + kept[3]);
}

}  // namespace

EVOMERGE_MULTIVERSION void masked_l1(const MaskedL1Params& p) {
  switch (p.compute) {
    case kBF16: masked_l1_impl<RoundBF16>(p); break;
    case kF16: masked_l1_impl<RoundF16>(p); break;
    default: masked_l1_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
