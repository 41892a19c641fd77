#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void masked_l1_impl(const MaskedL1Params& p) {
  std::vector<float> b(kBlock), x(kBlock);
  // Four lanes by element index, summed in a fixed order: deterministic and the same in the twin.
  double all[4] = {0, 0, 0, 0}, kept[4] = {0, 0, 0, 0};
  for (int64_t j = 0; j < p.count; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.count - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    load_block(p.x.data, p.x.dtype, j, n, x.data(), R::kCode);
    // j is a multiple of kBlock (and of 4), so lane (j + k) & 3 is k & 3: four sums, each in
    // index order as before, in a shape the compiler can keep in vector registers.
    const uint8_t* m = p.mask == nullptr ? nullptr : p.mask + j;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
      for (int l = 0; l < 4; ++l) {
        const double a = std::fabs(static_cast<double>(R::r(x[k + l] - b[k + l])));
        all[l] += a;
        kept[l] += (m == nullptr || m[k + l] != 0) ? a : 0.0;  // kept[] is never −0, so + 0 changes nothing
      }
    }
    for (; k < n; ++k) {
      const double a = std::fabs(static_cast<double>(R::r(x[k] - b[k])));
      const int lane = static_cast<int>((j + k) & 3);
      all[lane] += a;
      if (m == nullptr || m[k] != 0) kept[lane] += a;
    }
  }
  p.out[0] = (all[0] + all[1]) + (all[2] + all[3]);
  p.out[1] = (kept[0] + kept[1]) + (kept[2] + kept[3]);
}

}  // namespace

EVOMERGE_MULTIVERSION void masked_l1(const MaskedL1Params& p) {
  switch (p.compute) {
    case kBF16: masked_l1_impl<RoundBF16>(p); break;
    case kF16: masked_l1_impl<RoundF16>(p); break;
    default: masked_l1_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
