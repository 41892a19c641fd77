#include <algorithm>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void sce_variance_impl(SceVarianceParams& p) {
  const size_t m = p.inputs.size();
  std::vector<float> b(kBlock), d(m * kBlock);
  double nonzero = 0;
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    for (size_t i = 0; i < m; ++i) {
      float* di = d.data() + i * kBlock;
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, di, R::kCode);
      for (int64_t k = 0; k < n; ++k) di[k] = R::r(di[k] - b[k]);
    }
    for (int64_t k = 0; k < n; ++k) {
      // torch's var on CPU accumulates in f64, the result is f32, then the compute dtype.
      double mean = 0;
      for (size_t i = 0; i < m; ++i) mean += static_cast<double>(d[i * kBlock + k]);
      mean /= static_cast<double>(m);
      double ss = 0;
      for (size_t i = 0; i < m; ++i) {
        const double e = static_cast<double>(d[i * kBlock + k]) - mean;
        ss += e * e;
      }
      const float v = R::r(static_cast<float>(ss / static_cast<double>(m)));
      p.var[j + k] = v;
      if (v != 0.0f) nonzero += 1;
    }
  }
  p.nonzero = nonzero;
}

}  // namespace

EVOMERGE_MULTIVERSION void sce_variance(SceVarianceParams& p) {
  switch (p.compute) {
    case kBF16: sce_variance_impl<RoundBF16>(p); break;
    case kF16: sce_variance_impl<RoundF16>(p); break;
    default: sce_variance_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
