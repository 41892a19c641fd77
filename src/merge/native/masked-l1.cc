#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Exact sums: per f32 exponent field e, the sum of the significands (implicit bit included) of the
// |δ| with that exponent; a significand is below 2^24, so an int64 bin holds 2^39 of them. Four
// interleaved bin sets (by k & 3) keep runs of equal exponents from serialising on one counter;
// the kept sum is updated in the same iteration with the significand masked to 0 when dropped.
struct ExactSums {
  int64_t all[4][256] = {};
  int64_t kept[4][256] = {};
  int64_t nan_all = 0, inf_all = 0, nan_kept = 0, inf_kept = 0;

  static int64_t significand(uint32_t u) {
    const uint32_t e = u >> 23;
    return static_cast<int64_t>((u & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u));
  }

  // u: bits of |δ|; keep: all-ones (kept) or 0 per element, or null when there is no mask.
  void add(const uint32_t* __restrict u, const int64_t* __restrict keep, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      nan_all += u[k] > 0x7F800000u;
      inf_all += u[k] == 0x7F800000u;
    }
    if (keep == nullptr) {
      for (int64_t k = 0; k < n; ++k) all[k & 3][u[k] >> 23] += significand(u[k]);
      return;
    }
    for (int64_t k = 0; k < n; ++k) {
      nan_kept += (u[k] > 0x7F800000u) & (keep[k] != 0);
      inf_kept += (u[k] == 0x7F800000u) & (keep[k] != 0);
    }
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t e = u[k] >> 23;
      const int64_t m = significand(u[k]);
      all[k & 3][e] += m;
      kept[k & 3][e] += m & keep[k];
    }
  }

  static void write(const int64_t (&bins)[4][256], int64_t nan, int64_t inf, int64_t* out) {
    for (int e = 0; e < 256; ++e) out[e] = e == 255 ? 0 : (bins[0][e] + bins[1][e]) + (bins[2][e] + bins[3][e]);
    out[256] = nan;
    out[257] = inf;
  }
};

template <class R>
void masked_l1_impl(const MaskedL1Params& p) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> abs_bits(kBlock);
  std::vector<int64_t> keep(kBlock);
  std::vector<uint8_t> kept_flags(kBlock);
  BlockMasker masker(p.mask);
  ExactSums sums;
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    float* __restrict d = x.data();
    for (int64_t k = 0; k < n; ++k) {
      d[k] = std::fabs(R::r(d[k] - b[k]));
      abs_bits[k] = f32_bits(d[k]);
    }
    if (masker.active()) {
      // A dropped entry adds nothing to the kept sum.
      const uint8_t* m = masker.block(j, n, d, kept_flags.data());
      for (int64_t k = 0; k < n; ++k) keep[k] = -static_cast<int64_t>(m[k] != 0);
      sums.add(abs_bits.data(), keep.data(), n);
    } else {
      sums.add(abs_bits.data(), nullptr, n);
    }
  }
  ExactSums::write(sums.all, sums.nan_all, sums.inf_all, p.out);
  if (masker.active()) ExactSums::write(sums.kept, sums.nan_kept, sums.inf_kept, p.out + kL1Bins);
  else ExactSums::write(sums.all, sums.nan_all, sums.inf_all, p.out + kL1Bins);
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
