#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Adds the significand of each |δ| of the block to its exponent's bin; four interleaved bin sets
// (by k & 3) keep runs of equal exponents from serialising on one counter. A significand is below
// 2^24, so a bin of int64 holds the sum of 2^39 of them.
struct ExactBins {
  int64_t bins[4][256] = {};
  int64_t nan = 0, inf = 0;

  void add(const uint32_t* __restrict u, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t e = u[k] >> 23;
      const uint32_t m = (u[k] & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u);
      bins[k & 3][e] += m;
      nan += u[k] > 0x7F800000u;
      inf += u[k] == 0x7F800000u;
    }
  }

  void write(int64_t* out) const {
    for (int e = 0; e < 256; ++e) out[e] = e == 255 ? 0 : (bins[0][e] + bins[1][e]) + (bins[2][e] + bins[3][e]);
    out[256] = nan;
    out[257] = inf;
  }
};

template <class R>
void masked_l1_impl(const MaskedL1Params& p) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> abs_bits(kBlock), kept_bits(kBlock);
  std::vector<uint8_t> kept_flags(kBlock);
  BlockMasker masker(p.mask);
  ExactBins all, kept;
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    float* __restrict d = x.data();
    for (int64_t k = 0; k < n; ++k) {
      d[k] = std::fabs(R::r(d[k] - b[k]));
      abs_bits[k] = f32_bits(d[k]);
    }
    all.add(abs_bits.data(), n);
    if (masker.active()) {
      // A dropped entry adds +0, which changes no sum.
      const uint8_t* m = masker.block(j, n, d, kept_flags.data());
      for (int64_t k = 0; k < n; ++k) kept_bits[k] = m[k] != 0 ? abs_bits[k] : 0u;
      kept.add(kept_bits.data(), n);
    }
  }
  all.write(p.out);
  (masker.active() ? kept : all).write(p.out + kL1Bins);
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
