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
  // Radix select of the keys at ranks lo and hi − 1: top 16 bits, then low 16 bits. Four
  // interleaved histograms, summed after the pass, keep runs of equal keys (common: deltas of a
  // fine-tune take few distinct values) from serialising on one counter.
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
  Selected v_lo, v_hi;
  if (low_or == (low_and & 0xFFFFu)) {
    // Every key has the same low 16 bits (always so under bf16 compute): the top bucket is the key.
    v_lo = Selected{(bucket_lo << 16) | low_or, cum_lo};
    v_hi = Selected{(bucket_hi << 16) | low_or, cum_hi};
  } else {
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
    v_lo = Selected{(bucket_lo << 16) | low, cum_lo + within};
    find_bucket(low_b, hi - 1 - cum_hi, &low, &within);
    v_hi = Selected{(bucket_hi << 16) | low, cum_hi + within};
  }
  // Mark: keys strictly inside are kept; keys equal to a bound take ranks in index order (a key
  // equal to both bounds counts against the lower one). Branch-free: the comparisons are random.
  int64_t next_lo = v_lo.before, next_hi = v_hi.before;
  const uint32_t klo = v_lo.key, khi = v_hi.key;
  for_each_key_block<R>(p, b, x, keys, [&](int64_t j, int64_t n, const uint32_t* __restrict kb) {
    // Locals: a byte store may alias anything, which would reload every captured value per element.
    uint8_t* __restrict out = p.mask + j;
    int64_t nl = next_lo, nh = next_hi;
    int64_t cnt_lo = 0, cnt_hi = 0;
    for (int64_t k = 0; k < n; ++k) {
      cnt_lo += kb[k] == klo;
      cnt_hi += (kb[k] == khi) & (kb[k] != klo);
    }
    // Usually every bound-equal key of the block is on the same side of its rank window: then the
    // block needs no running rank (a plain vectorisable pass); else the exact per-element ranks.
    const bool lo_all = nl >= lo && nl + cnt_lo <= hi, lo_none = cnt_lo == 0 || nl + cnt_lo <= lo || nl >= hi;
    const bool hi_all = nh >= lo && nh + cnt_hi <= hi, hi_none = cnt_hi == 0 || nh + cnt_hi <= lo || nh >= hi;
    if ((lo_all || lo_none) && (hi_all || hi_none)) {
      const uint8_t kl = lo_all ? 1 : 0, kh = hi_all ? 1 : 0;
      for (int64_t k = 0; k < n; ++k) {
        const uint32_t key = kb[k];
        const uint8_t inside = static_cast<uint8_t>((key > klo) & (key < khi));
        const uint8_t eq_lo = static_cast<uint8_t>(key == klo);
        const uint8_t eq_hi = static_cast<uint8_t>((key == khi) & (key != klo));
        out[k] = static_cast<uint8_t>(inside | (eq_lo & kl) | (eq_hi & kh));
      }
      nl += cnt_lo;
      nh += cnt_hi;
    } else {
      for (int64_t k = 0; k < n; ++k) {
        const uint32_t key = kb[k];
        const int64_t eq_lo = key == klo;
        const int64_t eq_hi = (key == khi) & !eq_lo;
        const int64_t rank = eq_lo ? nl : nh;
        nl += eq_lo;
        nh += eq_hi;
        const int inside = (key > klo) & (key < khi);
        const int at_bound = static_cast<int>(eq_lo | eq_hi) & (rank >= lo) & (rank < hi);
        out[k] = static_cast<uint8_t>(inside | at_bound);
      }
    }
    next_lo = nl;
    next_hi = nh;
  });
}

}  // namespace

EVOMERGE_MULTIVERSION void rank_window_mask(const RankMaskParams& p) {
  switch (p.compute) {
    case kBF16: rank_impl<RoundBF16>(p); break;
    case kF16: rank_impl<RoundF16>(p); break;
    default: rank_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
