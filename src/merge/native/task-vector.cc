#include <algorithm>
#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {
namespace {

template <class R>
void task_vector_impl(const TaskVectorParams& p) {
  const size_t n_in = p.inputs.size();
  std::vector<float> b(kBlock), x(kBlock), acc(kBlock), raw_acc(kBlock), res(kBlock), div(kBlock);
  std::vector<float> wd(n_in * kBlock);  // weighted deltas of the block, per input
  std::vector<float> rd(p.elect_raw ? n_in * kBlock : 0);  // unweighted deltas, for SCE's election
  std::vector<BlockMasker> maskers(p.masks.begin(), p.masks.end());
  std::vector<uint8_t> kept(kBlock);
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    load_block(p.base.data, p.base.dtype, j, n, b.data(), R::kCode);
    std::fill(acc.begin(), acc.begin() + n, 0.0f);
    if (p.elect_raw) std::fill(raw_acc.begin(), raw_acc.begin() + n, 0.0f);
    for (size_t i = 0; i < n_in; ++i) {
      load_block(p.inputs[i].data, p.inputs[i].dtype, j, n, x.data(), R::kCode);
      float* w_i = wd.data() + i * kBlock;
      for (int64_t k = 0; k < n; ++k) x[k] = R::r(x[k] - b[k]);
      if (maskers[i].active()) {
        // δ·mask as a product, like mergekit: a dropped NaN or Inf stays NaN.
        const uint8_t* m = maskers[i].block(j, n, x.data(), kept.data());
        for (int64_t k = 0; k < n; ++k) x[k] = x[k] * static_cast<float>(m[k]);
      }
      const float s = p.scales[i];
      if (s != 1.0f) {
        // One loop per rounding (a switch inside the loop would keep it from vectorising).
        switch (p.sparsify_dtype) {
          case kBF16:
            for (int64_t k = 0; k < n; ++k) x[k] = R::r(RoundBF16::r(x[k] * s));
            break;
          case kF16:
            for (int64_t k = 0; k < n; ++k) x[k] = R::r(RoundF16::r(x[k] * s));
            break;
          default:
            for (int64_t k = 0; k < n; ++k) x[k] = R::r(x[k] * s);
            break;
        }
      }
      if (p.elect_raw) {
        float* r_i = rd.data() + i * kBlock;
        for (int64_t k = 0; k < n; ++k) {
          r_i[k] = x[k];
          raw_acc[k] = raw_acc[k] + x[k];
        }
      }
      const float w = p.weights[i];
      for (int64_t k = 0; k < n; ++k) {
        w_i[k] = R::r(x[k] * w);
        acc[k] = acc[k] + w_i[k];
      }
    }
    if (p.consensus) {
      // Sign election on the rounded sum of weighted deltas (0 counts as +); an input takes part
      // where its weighted delta is non-zero and has the elected sign.
      const float* elect = p.elect_raw ? raw_acc.data() : acc.data();
      for (int64_t k = 0; k < n; ++k) {
        const float total = R::r(elect[k]);
        acc[k] = total >= 0.0f ? 1.0f : -1.0f;
        res[k] = 0.0f;
        div[k] = 0.0f;
      }
      for (size_t i = 0; i < n_in; ++i) {
        const float* w_i = wd.data() + i * kBlock;
        const float* s_i = p.elect_raw ? rd.data() + i * kBlock : w_i;
        const float w = p.weights[i];
        for (int64_t k = 0; k < n; ++k) {
          // sign(s_i) == elected, branch-free (random signs defeat the branch predictor): the
          // elected sign is ±1, so 0 and NaN never agree.
          const float v = s_i[k];
          const float e = acc[k];
          const int agree = (static_cast<int>(v > 0.0f) & static_cast<int>(e > 0.0f)) |
                            (static_cast<int>(v < 0.0f) & static_cast<int>(e < 0.0f));
          const float m = static_cast<float>(agree);
          res[k] = res[k] + w_i[k] * m;
          div[k] = div[k] + w * m;
        }
      }
      if (p.min_divisor > 0.0f) {
        // torch's clamp(min=…): a NaN divisor stays NaN.
        const float lo = p.min_divisor;
        for (int64_t k = 0; k < n; ++k) {
          res[k] = R::r(res[k]);
          const float d = R::r(div[k]);
          div[k] = d < lo ? R::r(lo) : d;
        }
      } else {
        for (int64_t k = 0; k < n; ++k) {
          res[k] = R::r(res[k]);
          const float d = R::r(div[k]);
          div[k] = d == 0.0f ? 1.0f : d;
        }
      }
    } else {
      const float d = p.divisor;
      for (int64_t k = 0; k < n; ++k) {
        res[k] = R::r(acc[k]);
        div[k] = d;
      }
    }
    if (p.normalize) {
      for (int64_t k = 0; k < n; ++k) res[k] = R::r(res[k] / div[k]);
    }
    if (p.lambda != 1.0f) {
      const float l = p.lambda;
      for (int64_t k = 0; k < n; ++k) res[k] = R::r(res[k] * l);
    }
    for (int64_t k = 0; k < n; ++k) res[k] = R::r(b[k] + res[k]);
    store_block(res.data(), n, p.out, p.out_dtype, j);
  }
}

}  // namespace

EVOMERGE_MULTIVERSION void task_vector_merge(const TaskVectorParams& p) {
  switch (p.compute) {
    case kBF16: task_vector_impl<RoundBF16>(p); break;
    case kF16: task_vector_impl<RoundF16>(p); break;
    default: task_vector_impl<RoundF32>(p); break;
  }
}

}  // namespace evomerge
