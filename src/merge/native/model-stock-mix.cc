#include <algorithm>
#include <vector>

#include "kernels.h"
#include "layout.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void model_stock_impl(const ModelStockMixParams& p) {
  const size_t m = p.inputs.size();
  const float count = static_cast<float>(m);
  std::vector<float> b(kBlock), x(kBlock), s(kBlock);
  for_each_run(p.len, p.inner, p.start, p.end, [&](int64_t j0, int64_t j1, int64_t vec0, int64_t step) {
    for (int64_t j = j0; j < j1; j += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, j1 - j);
      const int64_t v = vec0 + step * (j - j0);
      load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
      // Python's sum(): each addition rounds to the compute dtype.
      load_block(p.inputs[0].data, p.inputs[0].dtype, j, n, s.data(), R::kCode);
      for (size_t i = 1; i < m; ++i) {
        load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, x.data(), R::kCode);
        for (int64_t k = 0; k < n; ++k) s[k] = R::r(s[k] + x[k]);
      }
      for (int64_t k = 0; k < n; ++k) {
        const int64_t e = v + step * k;
        const float avg = R::r(s[k] / count);
        s[k] = R::r(R::r(p.t[e] * avg) + R::r(p.omt[e] * b[k]));
      }
      store_block(s.data(), n, p.out, p.out_dtype, j);
    }
  });
}

}  // namespace

EVOMERGE_MULTIVERSION void model_stock_mix(const ModelStockMixParams& p) {
  switch (p.compute) {
    case kBF16: model_stock_impl<RoundBF16>(p); break;
    case kF16: model_stock_impl<RoundF16>(p); break;
    default: model_stock_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
