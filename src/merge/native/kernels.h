// The merge kernels, as the N-API glue (binding.cc) calls them: raw buffers, lengths and numbers
// only. Each kernel has a TypeScript twin with the same stem and arguments (binding.ts lists
// them); element ranges [start, end) let a caller split one tensor across calls.
#pragma once

#include <cstdint>
#include <vector>

#include "mask-rule.h"

namespace evomerge {

struct TensorRef {
  const uint8_t* data = nullptr;  // little-endian elements; null = absent
  int dtype = 0;                  // DTypeCode
};

// convert.cc: out[j] = encode(round_to(round_dtype, decode(src[j]))) for j in [start, end).
struct ConvertParams {
  TensorRef src;
  int round_dtype = 0;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void convert_dtype(const ConvertParams& p);

// linear.cc: out = R(Σ_f32 R(w_i·x_i)), then R(out / divisor) unless divisor == 1.
struct LinearParams {
  std::vector<TensorRef> inputs;
  const float* weights = nullptr;  // already rounded to the compute dtype by the caller
  float divisor = 1.0f;
  int compute = 0;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void linear_merge(const LinearParams& p);

// task-vector.cc: the fused pass of generalized task arithmetic (semantics §1.2).
struct TaskVectorParams {
  TensorRef base;
  std::vector<TensorRef> inputs;
  std::vector<MaskRule> masks;        // per input; kNone = keep everything (no sparsification)
  const float* scales = nullptr;      // per input L1 rescale factor; 1 = none
  int sparsify_dtype = 0;             // dtype the rescale product rounds in first
  const float* weights = nullptr;     // rounded to the compute dtype
  bool consensus = false;
  // SCE: elect and agree on the unweighted deltas' signs instead of the weighted deltas'.
  bool elect_raw = false;
  // > 0: consensus divisors clamp to at least this (SCE); 0: a zero divisor becomes 1 (TIES).
  float min_divisor = 0.0f;
  bool normalize = false;
  float divisor = 1.0f;  // Σw for the no-consensus case, already guarded
  float lambda = 1.0f;
  int compute = 0;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void task_vector_merge(const TaskVectorParams& p);

// rank-mask.cc: radix-select histograms of the order keys of |R(x − base)| (mask-rule.h
// order_key) over elements [0, count) of a range. Histograms of a tensor's chunks add up to the
// whole tensor's, so rank-window.ts finds a rank window's bounds for a tensor cut into chunks
// exactly as for one piece.
struct RankHistogramParams {
  TensorRef base, x;
  int compute = 0;
  int64_t count = 0;  // below 2^32, so a count fits in uint32
  bool descending = false;
  // rank_histogram: top[t] = #keys with key >> 16 == t (65536 entries); low_bits = [OR, AND] of
  // key & 0xFFFF over the range (0, 0xFFFF when it is empty).
  uint32_t* top = nullptr;
  uint32_t* low_bits = nullptr;
  // rank_low_histogram: low_lo[l] = #keys == (bucket_lo << 16 | l), low_hi likewise (65536 each).
  uint32_t bucket_lo = 0, bucket_hi = 0;
  uint32_t* low_lo = nullptr;
  uint32_t* low_hi = nullptr;
};
void rank_histogram(const RankHistogramParams& p);
void rank_low_histogram(const RankHistogramParams& p);

// random-mask.cc: DARE Bernoulli(p) mask over [start, end).
struct BernoulliMaskParams {
  uint32_t key0 = 0, key1 = 0;
  double threshold = 0;  // ceil(p * 2^32)
  int64_t start = 0, end = 0;
  uint8_t* mask = nullptr;
};
void bernoulli_mask(const BernoulliMaskParams& p);

// random-mask.cc: DELLA rank-based keep probabilities per vector, then Bernoulli draws.
struct DellaMaskParams {
  TensorRef base, x;
  int compute = 0;
  int work = 0;  // dtype ranks and probabilities are computed in
  int64_t outer = 1, len = 0, inner = 1;
  uint32_t key0 = 0, key1 = 0;
  int64_t index_offset = 0;  // element j of the range draws with counter index_offset + j
  float low_p = 0;  // f32(density − epsilon)
  float eps = 0;    // f32(epsilon)
  uint8_t* mask = nullptr;
};
void della_mask(const DellaMaskParams& p);

// masked-l1.cc: Σ|δ| and Σ|δ·mask|, δ = R(x − base), as exact sums: per f32 exponent e the sum of
// the significands (with the implicit bit) of the |δ| with that exponent, then the NaN and Inf
// counts. Exact integer sums add up in any order, so a tensor's chunks give its sums bit for bit
// (masked-l1.ts l1FromBins turns them into a number).
constexpr int64_t kL1Bins = 258;  // 256 exponent bins (255 unused), NaN count, Inf count
struct MaskedL1Params {
  TensorRef base, x;
  int compute = 0;
  MaskRule mask;  // kNone: everything counts as kept
  int64_t count = 0;
  int64_t* out = nullptr;  // [all: kL1Bins, kept: kL1Bins]
};
void masked_l1(const MaskedL1Params& p);

// gram.cc: per vector, Σ v_a·v_b for a <= b (f64, 4 lanes by position), v = R(x − base) or x,
// counting only positions whose mask byte is non-zero when a mask is given.
struct GramParams {
  std::vector<TensorRef> inputs;
  TensorRef base;                // data == null: no base
  const uint8_t* mask = nullptr;  // whole-tensor indexed; null = every position
  int compute = 0;
  bool round_products = false;  // sum R(v_a·v_b) instead of the exact products
  int64_t outer = 1, len = 0, inner = 1;
  double* out = nullptr;  // vectors × pairs
};
void gram_stats(const GramParams& p);

// slerp-mix.cc: res = O(O(c0·v0) + O(c1·v1)); res = O(res / div) unless div == 1; res = R(res);
// with a base, v = R(x − base) and the result is R(base + res). O = op dtype, R = compute dtype.
struct SlerpMixParams {
  TensorRef v0, v1, base;
  int compute = 0;
  int op = 0;
  int64_t outer = 1, len = 0, inner = 1;
  const float* c0 = nullptr;
  const float* c1 = nullptr;
  const float* div = nullptr;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void slerp_mix(const SlerpMixParams& p);

// model-stock-mix.cc: avg = R(R(((x_1 + x_2) + ...)) / N); out = R(R(t·avg) + R(omt·base)).
struct ModelStockMixParams {
  TensorRef base;
  std::vector<TensorRef> inputs;
  int compute = 0;
  int64_t outer = 1, len = 0, inner = 1;
  const float* t = nullptr;
  const float* omt = nullptr;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void model_stock_mix(const ModelStockMixParams& p);

// nearswap.cc: w = clamp(R(R(1 / max(R(|a − b|), 1e-6)) · t), 0, 1) (torch's t / x is
// reciprocal(x)·t); out = R(R(w·b) + R(R(1 − w)·a)), a the base.
struct NearswapParams {
  TensorRef a, b;
  float t = 0;
  int compute = 0;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
};
void nearswap_merge(const NearswapParams& p);

// sce-variance.cc: var[j] = R(f32(population variance over i of R(x_i − base)[j])), computed in
// f64 (mean first, then the mean squared deviation); nonzero = how many var[j] != 0 (NaN counts).
struct SceVarianceParams {
  TensorRef base;
  std::vector<TensorRef> inputs;
  int compute = 0;
  int64_t count = 0;
  float* var = nullptr;
  double nonzero = 0;  // out
};
void sce_variance(SceVarianceParams& p);

// multislerp.cc, per element: δ_i = R(x_i − base) (or x_i), u_i = R(δ_i / divisors_i),
// mean = R(Σ_f32 R(u_i·w_i)), m = R(mean / mean_norm), τ = R(Σ_f32 R(R(u_i − R(dots_i·m))·w_i)).
// multislerp_tangent: *tangent_sq = Σ τ² (f64, 4 lanes by index). multislerp_mix:
// out = R(R(R(m·cos_t) + R(τ·sinc_t))·scale), then R(base + out) with a base.
struct MultislerpParams {
  std::vector<TensorRef> inputs;
  TensorRef base;  // data == null: no base
  int compute = 0;
  const float* divisors = nullptr;
  const float* weights = nullptr;
  const float* dots = nullptr;
  float mean_norm = 1;
  float cos_t = 1, sinc_t = 0, scale = 1;
  uint8_t* out = nullptr;
  int out_dtype = 0;
  int64_t start = 0, end = 0;
  double tangent_sq = 0;  // out of multislerp_tangent
  bool with_dots = false;     // multislerp_moments: also the dots
  double* moments = nullptr;  // out of multislerp_moments: Σ mean², then Σ R(u_i·m) per input
};
// multislerp_moments: moments[0] = Σ mean² (mean before the division by mean_norm); with_dots:
// moments[1 + i] = Σ R(u_i·m) (torch's `(unit_tensors * mean).sum(-1)`), both f64, 4 lanes by index.
void multislerp_moments(MultislerpParams& p);
void multislerp_tangent(MultislerpParams& p);
void multislerp_mix(const MultislerpParams& p);

// karcher.cc. ū = u, or R(u / u_div) unless u_div == 1. karcher_tangent:
// t = Σ_i (sequentially rounded) R(coefs_i · R(R(x_i / norms_i) − R(dots_i · ū))), *t_sq = Σ t²
// (f64, 4 lanes by index). karcher_step: u = R(R(cos_n·ū) + R(sin_n·R(t / norm_t))), or
// R(cos_n·ū) when t is null. karcher_dots: dots_out_i = Σ ū·R(x_i / norms_i) (f64, 4 lanes by
// index), torch.dot of the rounded mean direction and unit vector.
struct KarcherParams {
  std::vector<TensorRef> inputs;
  int compute = 0;
  int64_t count = 0;
  const float* norms = nullptr;
  const float* coefs = nullptr;
  const float* dots = nullptr;
  float* u = nullptr;
  float u_div = 1;
  float* t = nullptr;
  float cos_n = 1, sin_n = 0, norm_t = 1;
  double t_sq = 0;  // out of karcher_tangent
  double* dots_out = nullptr;  // out of karcher_dots, one per input
};
void karcher_tangent(KarcherParams& p);
void karcher_step(const KarcherParams& p);
void karcher_dots(const KarcherParams& p);

}  // namespace evomerge
