#include <algorithm>
#include <vector>

#include "kernels.h"
#include "mask-rule.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Order keys of |δ| = |R(x − base)| (mask-rule.h order_key), one block at a time.
template <class R, class Fn>
void for_each_key_block(const RankHistogramParams& p, Fn&& fn) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> keys(kBlock);
  const uint32_t flip = p.descending ? 0xFFFFFFFFu : 0u;
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    for (int64_t k = 0; k < n; ++k) keys[k] = order_key(f32_bits(R::r(x[k] - b[k])), flip);
    fn(n, keys.data());
  }
}

template <class R>
void top_impl(const RankHistogramParams& p) {
  // Four interleaved histograms, summed after the pass, keep runs of equal keys (common: deltas
  // of a fine-tune take few distinct values) from serialising on one counter.
  std::vector<uint32_t> top4(4 * 65536, 0);
  uint32_t low_or = 0, low_and = 0xFFFFu;
  for_each_key_block<R>(p, [&](int64_t n, const uint32_t* kb) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
      top4[kb[k] >> 16]++;
      top4[65536 + (kb[k + 1] >> 16)]++;
      top4[2 * 65536 + (kb[k + 2] >> 16)]++;
      top4[3 * 65536 + (kb[k + 3] >> 16)]++;
    }
    for (; k < n; ++k) top4[kb[k] >> 16]++;
    uint32_t o = 0, a = 0xFFFFu;
    for (k = 0; k < n; ++k) {
      o |= kb[k];
      a &= kb[k];
    }
    low_or |= o & 0xFFFFu;
    low_and &= a;
  });
  for (size_t i = 0; i < 65536; ++i) p.top[i] = top4[i] + top4[65536 + i] + top4[2 * 65536 + i] + top4[3 * 65536 + i];
  p.low_bits[0] = low_or;
  p.low_bits[1] = low_and & 0xFFFFu;
}

template <class R>
void low_impl(const RankHistogramParams& p) {
  std::fill(p.low_lo, p.low_lo + 65536, 0u);
  std::fill(p.low_hi, p.low_hi + 65536, 0u);
  const uint32_t blo = p.bucket_lo, bhi = p.bucket_hi;
  for_each_key_block<R>(p, [&](int64_t n, const uint32_t* kb) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t t = kb[k] >> 16;
      if (t == blo) p.low_lo[kb[k] & 0xFFFFu]++;
      if (t == bhi) p.low_hi[kb[k] & 0xFFFFu]++;
    }
  });
}

}  // namespace

EVOMERGE_MULTIVERSION void rank_histogram(const RankHistogramParams& p) {
  switch (p.compute) {
    case kBF16: top_impl<RoundBF16>(p); break;
    case kF16: top_impl<RoundF16>(p); break;
    default: top_impl<RoundF32>(p); break;
  }
}

EVOMERGE_MULTIVERSION void rank_low_histogram(const RankHistogramParams& p) {
  switch (p.compute) {
    case kBF16: low_impl<RoundBF16>(p); break;
    case kF16: low_impl<RoundF16>(p); break;
    default: low_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
