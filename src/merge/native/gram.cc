#include <algorithm>
#include <vector>

#include "kernels.h"
#include "layout.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void gram_impl(const GramParams& p) {
  const int64_t m = static_cast<int64_t>(p.inputs.size());
  const int64_t pairs = m * (m + 1) / 2;
  const int64_t vectors = p.outer * p.inner;
  const int64_t total = vectors * p.len;
  // Four lanes per (vector, pair), by position in the vector modulo 4, combined in a fixed order.
  std::vector<double> lanes(static_cast<size_t>(vectors * pairs * 4), 0.0);
  std::vector<float> b(kBlock), v(static_cast<size_t>(m * kBlock));
  for_each_run(p.len, p.inner, 0, total, [&](int64_t j0, int64_t j1, int64_t vec0, int64_t step) {
    for (int64_t j = j0; j < j1; j += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, j1 - j);
      if (p.base.data) load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
      for (int64_t a = 0; a < m; ++a) {
        float* va = v.data() + a * kBlock;
        load_block(p.inputs[a].data, p.inputs[a].dtype, j, n, va, R::kCode);
        if (p.base.data) {
          for (int64_t k = 0; k < n; ++k) va[k] = R::r(va[k] - b[k]);
        }
        if (p.mask) {
          // Masked-out positions count as 0 (SCE's energies after its variance selection).
          for (int64_t k = 0; k < n; ++k) va[k] = p.mask[j + k] != 0 ? va[k] : 0.0f;
        }
      }
      for (int64_t k = 0; k < n; ++k) {
        const int64_t vec = vec0 + step * (j + k - j0);
        const int64_t pos = step == 0 ? j + k - vec0 * p.len : (j0 / p.inner) % p.len;
        double* acc = lanes.data() + (vec * pairs) * 4 + (pos & 3);
        int64_t q = 0;
        for (int64_t a = 0; a < m; ++a) {
          const double xa = v[a * kBlock + k];
          if (p.round_products) {
            // torch's elementwise product (e.g. `tvs**2`) rounds to the compute dtype before its sum.
            const float fa = v[a * kBlock + k];
            for (int64_t c = a; c < m; ++c, ++q) acc[q * 4] += static_cast<double>(R::r(fa * v[c * kBlock + k]));
          } else {
            for (int64_t c = a; c < m; ++c, ++q) acc[q * 4] += xa * static_cast<double>(v[c * kBlock + k]);
          }
        }
      }
    }
  });
  for (int64_t e = 0; e < vectors * pairs; ++e) {
    p.out[e] = lane_total(lanes.data() + e * 4);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void gram_stats(const GramParams& p) {
  switch (p.compute) {
    case kBF16: gram_impl<RoundBF16>(p); break;
    case kF16: gram_impl<RoundF16>(p); break;
    default: gram_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
