#include <algorithm>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void linear_impl(const LinearParams& p) {
  const size_t n_in = p.inputs.size();
  std::vector<float> x(kBlock), acc(kBlock);
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    std::fill(acc.begin(), acc.begin() + n, 0.0f);
    for (size_t i = 0; i < n_in; ++i) {
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, x.data(), R::kCode);
      const float w = p.weights[i];
      // The products round to the compute dtype; the sum over models accumulates in f32.
      for (int64_t k = 0; k < n; ++k) acc[k] = acc[k] + R::r(w * x[k]);
    }
    for (int64_t k = 0; k < n; ++k) acc[k] = R::r(acc[k]);
    if (p.divisor != 1.0f) {
      const float d = p.divisor;
      for (int64_t k = 0; k < n; ++k) acc[k] = R::r(acc[k] / d);
    }
    store_block(acc.data(), n, p.out, p.out_dtype, j);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void linear_merge(const LinearParams& p) {
  switch (p.compute) {
    case kBF16: linear_impl<RoundBF16>(p); break;
    case kF16: linear_impl<RoundF16>(p); break;
    default: linear_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
