#include <algorithm>
#include <vector>

#include "kernels.h"
#include "mask-rule.h"
#include "numeric.h"

namespace evomerge {
namespace {

// Order keys of |δ| = |R(x − base)|: the f32 bit pattern of a non-negative float orders like the
// value (NaN above +Inf); descending order uses the complement.
template <class R, class Fn>
void for_each_key_block(const RankMaskParams& p, std::vector<float>& b, std::vector<float>& x,
                        std::vector<uint32_t>& keys, Fn&& fn) {
  const uint32_t flip = p.descending ? 0xFFFFFFFFu : 0u;
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    for (int64_t k = 0; k < n; ++k) keys[k] = order_key(f32_bits(R::r(x[k] - b[k])), flip);
    fn(j, n, keys.data());
  }
}

// Index of the bucket holding rank r, and the count of keys in earlier buckets.
inline void find_bucket(const std::vector<int64_t>& hist, int64_t r, uint32_t* bucket, int64_t* before) {
  int64_t cum = 0;
  for (uint32_t i = 0; i < hist.size(); ++i) {
    if (cum + hist[i] > r) {
      *bucket = i;
      *before = cum;
      return;
    }
    cum += hist[i];
  }
  *bucket = static_cast<uint32_t>(hist.size() - 1);
  *before = cum;
}

// The keys at ranks lo and hi − 1 (lo < hi) by radix select: top 16 bits, then low 16 bits.
template <class R>
RankBounds select_bounds(const RankMaskParams& p) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> keys(kBlock);
  const int64_t lo = p.lo, hi = p.hi;
  // Four interleaved histograms, summed after the pass, keep runs of equal keys (common: deltas
  // of a fine-tune take few distinct values) from serialising on one counter.
  std::vector<uint32_t> top4(4 * 65536, 0);
  uint32_t low_or = 0, low_and = 0xFFFFu;
  for_each_key_block<R>(p, b, x, keys, [&](int64_t, int64_t n, const uint32_t* kb) {
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
  std::vector<int64_t> top(65536);
  for (size_t i = 0; i < 65536; ++i) {
    top[i] = static_cast<int64_t>(top4[i]) + top4[65536 + i] + top4[2 * 65536 + i] + top4[3 * 65536 + i];
  }
  std::vector<uint32_t>().swap(top4);
  uint32_t bucket_lo, bucket_hi;
  int64_t cum_lo, cum_hi;
  find_bucket(top, lo, &bucket_lo, &cum_lo);
  find_bucket(top, hi - 1, &bucket_hi, &cum_hi);
  if (low_or == (low_and & 0xFFFFu)) {
    // Every key has the same low 16 bits (always so under bf16 compute): the top bucket is the key.
    return RankBounds{(bucket_lo << 16) | low_or, (bucket_hi << 16) | low_or, cum_lo, cum_hi};
  }
  std::vector<int64_t> low_a(65536, 0), low_b(65536, 0);
  for_each_key_block<R>(p, b, x, keys, [&](int64_t, int64_t n, const uint32_t* kb) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t t = kb[k] >> 16;
      if (t == bucket_lo) low_a[kb[k] & 0xFFFFu]++;
      if (t == bucket_hi) low_b[kb[k] & 0xFFFFu]++;
    }
  });
  uint32_t low_lo, low_hi;
  int64_t within_lo, within_hi;
  find_bucket(low_a, lo - cum_lo, &low_lo, &within_lo);
  find_bucket(low_b, hi - 1 - cum_hi, &low_hi, &within_hi);
  return RankBounds{(bucket_lo << 16) | low_lo, (bucket_hi << 16) | low_hi, cum_lo + within_lo, cum_hi + within_hi};
}

template <class R>
void rank_impl(const RankMaskParams& p) {
  if (p.lo >= p.hi) {
    std::fill(p.mask, p.mask + p.count, 0);
    return;
  }
  const RankBounds v = select_bounds<R>(p);
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> keys(kBlock);
  int64_t next_lo = v.before_lo, next_hi = v.before_hi;
  for_each_key_block<R>(p, b, x, keys, [&](int64_t j, int64_t n, const uint32_t* kb) {
    mark_rank_block(kb, n, v.key_lo, v.key_hi, p.lo, p.hi, &next_lo, &next_hi, p.mask + j);
  });
}

template <class R>
RankBounds bounds_impl(const RankMaskParams& p) {
  return p.lo >= p.hi ? RankBounds{} : select_bounds<R>(p);
}

}  // namespace

EVOMERGE_MULTIVERSION RankBounds rank_window_bounds(const RankMaskParams& p) {
  switch (p.compute) {
    case kBF16: return bounds_impl<RoundBF16>(p);
    case kF16: return bounds_impl<RoundF16>(p);
    default: return bounds_impl<RoundF32>(p);
  }
}

EVOMERGE_MULTIVERSION void rank_window_mask(const RankMaskParams& p) {
  switch (p.compute) {
    case kBF16: rank_impl<RoundBF16>(p); break;
    case kF16: rank_impl<RoundF16>(p); break;
    default: rank_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
