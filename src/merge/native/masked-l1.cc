#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Exact sums: per f32 exponent field e, the sum of the significands (implicit bit included) of the
// |δ| with that exponent; a significand is below 2^24, so an int64 bin holds 2^39 of them. The
// integer the bins stand for is exact, so how a sum is spread over them does not matter (add_block
// puts a block's total in two bins). Four interleaved bin sets (by k & 3) keep runs of equal
// exponents from serialising on one counter in the per-element path.
struct ExactSums {
  int64_t all[4][256] = {};
  int64_t kept[4][256] = {};
  int64_t nan_all = 0, inf_all = 0, nan_kept = 0, inf_kept = 0;

  static int64_t significand(uint32_t u) {
    const uint32_t e = u >> 23;
    return static_cast<int64_t>((u & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u));
  }

  // Per element, for the finite values of [from, to) whose exponent field (0 counted as 1) is
  // below `below` (255: all of them); `m`: kept flags, or null when there is no mask.
  void add_slow(const uint32_t* u, const uint8_t* m, int64_t from, int64_t to, uint32_t below) {
    for (int64_t k = from; k < to; ++k) {
      const uint32_t e = u[k] >> 23;
      if (e == 255 || (e > 0 ? e : 1u) >= below) continue;
      const int64_t s = significand(u[k]);
      all[k & 3][e] += s;
      if (m == nullptr || m[k] != 0) kept[k & 3][e] += s;
    }
  }

  static void write(const int64_t (&bins)[4][256], int64_t nan, int64_t inf, int64_t* out) {
    for (int e = 0; e < 256; ++e) out[e] = e == 255 ? 0 : (bins[0][e] + bins[1][e]) + (bins[2][e] + bins[3][e]);
    out[256] = nan;
    out[257] = inf;
  }
};

// Adds a block's |δ| to the bins. Fast path: a finite value whose exponent field e (0 counted as 1)
// lies within kSpan of the block's largest, emax, is its significand times 2^(e − eb) in units of
// 2^(eb − 150), eb = max(emax − kSpan, 1): below 2^(24 + kSpan), so 512 of them sum below 2^53 in
// int64 lanes (integer sums vectorise; any order gives the same total). The block's totals go into
// bins eb and eb + 24 in two parts. Values further below the maximum (rare) take the per-element path.
constexpr uint32_t kSpan = 20;

inline void add_block(ExactSums& sums, const uint32_t* __restrict u, const uint8_t* __restrict m, int64_t n) {
  uint32_t emax = 1;
  for (int64_t k = 0; k < n; ++k) emax = std::max(emax, u[k] >> 23);
  if (emax == 255) {
    // NaN or Inf in the block (rare): count them, and take the largest finite exponent.
    int64_t nan_n = 0, inf_n = 0, nan_k = 0, inf_k = 0;
    emax = 1;
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t e = u[k] >> 23;
      if (e != 255) emax = std::max(emax, e);
      const bool is_nan = u[k] > 0x7F800000u, is_inf = u[k] == 0x7F800000u;
      const bool kept = m == nullptr || m[k] != 0;
      nan_n += is_nan;
      inf_n += is_inf;
      nan_k += is_nan & kept;
      inf_k += is_inf & kept;
    }
    sums.nan_all += nan_n;
    sums.inf_all += inf_n;
    sums.nan_kept += nan_k;
    sums.inf_kept += inf_k;
  }
  if (emax > 254 - 24 + kSpan) {
    // The high part would land past bin 254: the per-element path for this block.
    sums.add_slow(u, m, 0, n, 255);
    return;
  }
  const uint32_t eb = emax > kSpan + 1 ? emax - kSpan : 1u;
  int64_t total_all = 0, total_kept = 0, far = 0;
  for (int64_t k = 0; k < n; ++k) {
    const uint32_t e = u[k] >> 23;
    const uint32_t ee = e > 0 ? e : 1u;
    const bool in = (e != 255) & (ee >= eb);
    far += (e != 255) & (ee < eb) & (u[k] != 0);  // zeros add nothing
    const uint32_t sig = in ? (u[k] & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u) : 0u;
    total_all += static_cast<int64_t>(static_cast<uint64_t>(sig) << (in ? ee - eb : 0u));
  }
  if (m != nullptr) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t e = u[k] >> 23;
      const uint32_t ee = e > 0 ? e : 1u;
      const bool in = (e != 255) & (ee >= eb) & (m[k] != 0);
      const uint32_t sig = in ? (u[k] & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u) : 0u;
      total_kept += static_cast<int64_t>(static_cast<uint64_t>(sig) << (in ? ee - eb : 0u));
    }
  }
  if (m == nullptr) total_kept = total_all;
  sums.all[0][eb] += total_all & 0xFFFFFF;
  sums.all[0][eb + 24] += total_all >> 24;
  sums.kept[0][eb] += total_kept & 0xFFFFFF;
  sums.kept[0][eb + 24] += total_kept >> 24;
  if (far > 0) sums.add_slow(u, m, 0, n, eb);
}

template <class R>
void masked_l1_impl(const MaskedL1Params& p) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> abs_bits(kBlock);
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
    // A dropped entry adds nothing to the kept sum.
    const uint8_t* m = masker.active() ? masker.block(j, n, d, kept_flags.data()) : nullptr;
    add_block(sums, abs_bits.data(), m, n);
  }
  ExactSums::write(sums.all, sums.nan_all, sums.inf_all, p.out);
  ExactSums::write(sums.kept, sums.nan_kept, sums.inf_kept, p.out + kL1Bins);
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
