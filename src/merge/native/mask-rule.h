// Kept positions of a sparsified input, as the kernels that apply them (task_vector_merge,
// masked_l1) receive them: a whole-tensor byte mask, or a rule they evaluate block by block while
// they stream the tensor, so that TIES and DARE hold no mask in memory and make no pass to write
// one. The TypeScript twin is mask-rule.ts.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "numeric.h"
#include "random.h"

namespace evomerge {

struct MaskRule {
  enum Kind { kNone, kBytes, kBernoulli, kRank };
  Kind kind = kNone;
  const uint8_t* bytes = nullptr;  // kBytes: whole-tensor indexed, 1 = kept
  // kBernoulli: keep iff draw32(key0, key1, index_offset + j) < threshold (threshold =
  // ceil(p · 2^32)); index_offset places a chunk's element 0 in its whole tensor.
  uint32_t key0 = 0, key1 = 0;
  double threshold = 0;
  int64_t index_offset = 0;
  // kRank: keep the ranks [lo, hi) of the order keys of |δ| (ties by lower index); key_lo / key_hi
  // are the keys at ranks lo and hi − 1 and before_lo / before_hi the counts of smaller keys
  // (rank-window.ts; for a chunk, the running ranks at its first element). Needs the blocks in
  // index order from element 0.
  int64_t lo = 0, hi = 0;
  bool descending = false;
  uint32_t key_lo = 0, key_hi = 0;
  int64_t before_lo = 0, before_hi = 0;
};

// out[k] = 1 iff draw32(key0, key1, j0 + k) < threshold, for k in [0, n): keep_draw as an integer
// comparison (draw < ceil(threshold), both below 2^32), in a loop the compiler vectorises.
inline void bernoulli_fill(uint32_t key0, uint32_t key1, double threshold, int64_t j0, int64_t n, uint8_t* __restrict out) {
  if (!(threshold > 0.0 && threshold <= 4294967295.0)) {
    std::fill(out, out + n, static_cast<uint8_t>(threshold > 0.0 ? 1 : 0));  // above every draw, or none (<= 0, NaN)
    return;
  }
  const uint32_t t = static_cast<uint32_t>(std::ceil(threshold));
  // Runs of equal high index words, so the inner loop is plain 32-bit arithmetic.
  for (int64_t a = j0, end = j0 + n; a < end;) {
    const int64_t b = std::min<int64_t>(end, ((a >> 32) + 1) << 32);
    const uint32_t hi_term = key1 + static_cast<uint32_t>(a >> 32) * 0x85EBCA6Bu;
    const uint32_t lo0 = static_cast<uint32_t>(a);
    uint8_t* __restrict o = out + (a - j0);
    for (int64_t k = 0; k < b - a; ++k) {
      const uint32_t h = mix32((lo0 + static_cast<uint32_t>(k)) ^ key0);
      o[k] = mix32(h + hi_term) < t ? 1 : 0;
    }
    a = b;
  }
}

// Order key of |δ| from δ's f32 bits: a non-negative f32's bit pattern orders like its value
// (NaN above +Inf); descending order uses the complement.
inline uint32_t order_key(uint32_t delta_bits, uint32_t flip) { return (delta_bits & 0x7FFFFFFFu) ^ flip; }

// Marks one block of order keys against a rank window: keys strictly between key_lo and key_hi are
// kept; a key equal to a bound takes the next rank of that bound in index order (a key equal to
// both counts against the lower one) and is kept when the rank lies in [lo, hi). *next_lo and
// *next_hi carry those ranks from block to block. Requires lo < hi.
inline void mark_rank_block(const uint32_t* __restrict kb, int64_t n, uint32_t klo, uint32_t khi, int64_t lo, int64_t hi,
                            int64_t* next_lo, int64_t* next_hi, uint8_t* __restrict out) {
  int64_t nl = *next_lo, nh = *next_hi;
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
  *next_lo = nl;
  *next_hi = nh;
}

// Evaluates one input's MaskRule block by block; blocks must come in index order (a rank rule
// from element 0, which the binding checks).
class BlockMasker {
 public:
  explicit BlockMasker(const MaskRule& rule) : rule_(rule), next_lo_(rule.before_lo), next_hi_(rule.before_hi) {}

  bool active() const { return rule_.kind != MaskRule::kNone; }

  // Kept flags (0 / 1) of elements [j, j + n), n <= kBlock; `delta` holds the block's δ = R(x − base)
  // (or |δ|). Returns `scratch` (kBlock bytes) or a view of the byte mask.
  const uint8_t* block(int64_t j, int64_t n, const float* delta, uint8_t* scratch) {
    switch (rule_.kind) {
      case MaskRule::kBytes:
        return rule_.bytes + j;
      case MaskRule::kBernoulli:
        bernoulli_fill(rule_.key0, rule_.key1, rule_.threshold, rule_.index_offset + j, n, scratch);
        return scratch;
      case MaskRule::kRank: {
        if (rule_.lo >= rule_.hi) {
          std::fill(scratch, scratch + n, 0);
          return scratch;
        }
        const uint32_t flip = rule_.descending ? 0xFFFFFFFFu : 0u;
        for (int64_t k = 0; k < n; ++k) keys_[k] = order_key(f32_bits(delta[k]), flip);
        mark_rank_block(keys_, n, rule_.key_lo, rule_.key_hi, rule_.lo, rule_.hi, &next_lo_, &next_hi_, scratch);
        return scratch;
      }
      default:
        return nullptr;
    }
  }

 private:
  MaskRule rule_;
  int64_t next_lo_, next_hi_;
  uint32_t keys_[kBlock];
};

}  // namespace evomerge
