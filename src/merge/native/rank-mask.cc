#include <algorithm>
#include <vector>

#include "kernels.h"
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
    for (int64_t k = 0; k < n; ++k) keys[k] = (f32_bits(R::r(x[k] - b[k])) & 0x7FFFFFFFu) ^ flip;
    fn(j, n, keys.data());
  }
}

struct Selected {
  uint32_t key;
  int64_t before;  // how many keys are strictly smaller
};

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

template <class R>
void rank_impl(const RankMaskParams& p) {
  std::vector<float> b(kBlock), x(kBlock);
  std::vector<uint32_t> keys(kBlock);
  const int64_t lo = p.lo, hi = p.hi;
  if (p.count <= 4096) {
    // Small tensors: an explicit sort by (key, index) gives the same ranks.
    std::vector<uint64_t> order(static_cast<size_t>(p.count));
    for_each_key_block<R>(p, b, x, keys, [&](int64_t j, int64_t n, const uint32_t* kb) {
      for (int64_t k = 0; k < n; ++k) order[j + k] = (static_cast<uint64_t>(kb[k]) << 32) | static_cast<uint64_t>(j + k);
    });
    std::sort(order.begin(), order.end());
    std::fill(p.mask, p.mask + p.count, 0);
    for (int64_t r = std::max<int64_t>(lo, 0); r < std::min(hi, p.count); ++r) p.mask[order[r] & 0xFFFFFFFFu] = 1;
    return;
  }
  if (lo >= hi) {
    std::fill(p.mask, p.mask + p.count, 0);
    return;
  }
  // Radix select of the keys at ranks lo and hi − 1: top 16 bits, then low 16 bits.
  std::vector<int64_t> top(65536, 0);
  for_each_key_block<R>(p, b, x, keys, [&](int64_t, int64_t n, const uint32_t* kb) {
    for (int64_t k = 0; k < n; ++k) top[kb[k] >> 16]++;
  });
  uint32_t bucket_lo, bucket_hi;
  int64_t cum_lo, cum_hi;
  find_bucket(top, lo, &bucket_lo, &cum_lo);
  find_bucket(top, hi - 1, &bucket_hi, &cum_hi);
  std::vector<int64_t> low_a(65536, 0), low_b(65536, 0);
  for_each_key_block<R>(p, b, x, keys, [&](int64_t, int64_t n, const uint32_t* kb) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t t = kb[k] >> 16;
      if (t == bucket_lo) low_a[kb[k] & 0xFFFFu]++;
      if (t == bucket_hi) low_b[kb[k] & 0xFFFFu]++;
    }
  });
  uint32_t low;
  int64_t within;
  find_bucket(low_a, lo - cum_lo, &low, &within);
  const Selected v_lo{(bucket_lo << 16) | low, cum_lo + within};
  find_bucket(low_b, hi - 1 - cum_hi, &low, &within);
  const Selected v_hi{(bucket_hi << 16) | low, cum_hi + within};
  // Mark: keys strictly inside are kept; keys equal to a bound take ranks in index order.
  int64_t next_lo = v_lo.before, next_hi = v_hi.before;
  for_each_key_block<R>(p, b, x, keys, [&](int64_t j, int64_t n, const uint32_t* kb) {
    for (int64_t k = 0; k < n; ++k) {
      const uint32_t key = kb[k];
      uint8_t keep;
      if (key < v_lo.key || key > v_hi.key) {
        keep = 0;
      } else if (key > v_lo.key && key < v_hi.key) {
        keep = 1;
      } else {
        const int64_t rank = key == v_lo.key ? next_lo++ : next_hi++;
        keep = rank >= lo && rank < hi ? 1 : 0;
      }
      p.mask[j + k] = keep;
    }
  });
}

}  // namespace

void rank_window_mask(const RankMaskParams& p) {
  switch (p.compute) {
    case kBF16: rank_impl<RoundBF16>(p); break;
    case kF16: rank_impl<RoundF16>(p); break;
    default: rank_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
