#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "mask-rule.h"
#include "numeric.h"
#include "random.h"

namespace evomerge {

EVOMERGE_MULTIVERSION void bernoulli_mask(const BernoulliMaskParams& p) {
  bernoulli_fill(p.key0, p.key1, p.threshold, p.start, p.end - p.start, p.mask + p.start);
}

namespace {

// DELLA keep probability of the element with 0-based ascending rank r in a vector of `len`,
// computed in the work dtype op by op as mergekit does (semantics §1.2, random-methods.md).
inline float della_probability(int work, int64_t r, int64_t len, float low_p, float eps) {
  float rn;
  if (len == 1) {
    rn = 0.5f;  // mergekit divides 0 by 0 here and fails; evomerge keeps with p = density
  } else {
    const float rk = round_to(work, round_to(work, static_cast<float>(r)) + 1.0f);
    const float max_r = round_to(work, round_to(work, static_cast<float>(len - 1)) + 1.0f);
    rn = round_to(work, round_to(work, rk - 1.0f) / round_to(work, max_r - 1.0f));
    rn = rn < 0.0f ? 0.0f : rn > 1.0f ? 1.0f : rn;
  }
  return round_to(work, low_p + round_to(work, round_to(work, rn * 2.0f) * eps));
}

template <class R>
void della_impl(const DellaMaskParams& p) {
  const int64_t slab = p.len * p.inner;
  std::vector<uint64_t> order(static_cast<size_t>(slab));
  std::vector<float> b(kBlock), x(kBlock);
  for (int64_t o = 0; o < p.outer; ++o) {
    const int64_t first = o * slab;
    for (int64_t s = 0; s < slab; s += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, slab - s);
      load_block(p.base.data, p.base.dtype, first + s, n, b.data(), R::kCode);
      load_block(p.x.data, p.x.dtype, first + s, n, x.data(), R::kCode);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t l = (s + k) / p.inner, i = (s + k) - l * p.inner;
        const uint32_t key = f32_bits(R::r(x[k] - b[k])) & 0x7FFFFFFFu;
        order[i * p.len + l] = (static_cast<uint64_t>(key) << 32) | static_cast<uint64_t>(l);
      }
    }
    for (int64_t i = 0; i < p.inner; ++i) {
      uint64_t* seg = order.data() + i * p.len;
      // Ascending magnitude, ties by position: every element gets a distinct rank.
      std::sort(seg, seg + p.len);
      for (int64_t r = 0; r < p.len; ++r) {
        const int64_t l = static_cast<int64_t>(seg[r] & 0xFFFFFFFFu);
        const int64_t j = first + l * p.inner + i;
        const float prob = della_probability(p.work, r, p.len, p.low_p, p.eps);
        const double threshold = std::ceil(static_cast<double>(prob) * 4294967296.0);
        p.mask[j] = keep_draw(p.key0, p.key1, static_cast<uint64_t>(p.index_offset + j), threshold) ? 1 : 0;
      }
    }
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void della_mask(const DellaMaskParams& p) {
  switch (p.compute) {
    case kBF16: della_impl<RoundBF16>(p); break;
    case kF16: della_impl<RoundF16>(p); break;
    default: della_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
