// N-API glue: the only file that sees JavaScript values. It reads each kernel's argument object
// (the shapes are declared in binding.ts), checks every buffer is long enough for the elements
// the kernel will touch, and calls the kernel with raw pointers. Kernels run on the calling thread.
#include <napi.h>

#include <cmath>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>

#include <unordered_map>
#endif

#include "kernels.h"
#include "numeric.h"

namespace {

using namespace evomerge;

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* kernel) : env_(info.Env()), kernel_(kernel) {
    if (info.Length() < 1 || !info[0].IsObject()) fail("expects one argument object");
    obj_ = info[0].As<Napi::Object>();
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Napi::TypeError::New(env_, std::string(kernel_) + ": " + what);
  }

  Napi::Value get(const char* key) const { return obj_.Get(key); }

  double number(const char* key) const {
    Napi::Value v = get(key);
    if (!v.IsNumber()) fail(std::string(key) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }

  int64_t integer(const char* key) const {
    const double d = number(key);
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) fail(std::string(key) + " must be a non-negative integer");
    return static_cast<int64_t>(d);
  }

  int dtype(const char* key) const {
    const int64_t d = integer(key);
    if (d > kF64) fail(std::string(key) + " is not a dtype code");
    return static_cast<int>(d);
  }

  int compute_dtype(const char* key) const {
    const int d = dtype(key);
    if (d == kF64) fail(std::string(key) + " must be F32, F16 or BF16");
    return d;
  }

  bool boolean(const char* key) const {
    Napi::Value v = get(key);
    if (!v.IsBoolean()) fail(std::string(key) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  // A Uint8Array (or null when allowed) holding at least min_bytes.
  uint8_t* bytes(Napi::Value v, const std::string& name, int64_t min_bytes, bool nullable) const {
    if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      fail(name + " must be a Uint8Array");
    }
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    if (static_cast<int64_t>(a.ByteLength()) < min_bytes) {
      fail(name + " holds " + std::to_string(a.ByteLength()) + " bytes, needs " + std::to_string(min_bytes));
    }
    return a.Data();
  }

  template <class T, napi_typedarray_type kType>
  T* typed(const char* key, int64_t min_len, const char* type_name) const {
    Napi::Value v = get(key);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType) {
      fail(std::string(key) + " must be a " + type_name);
    }
    Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
    if (static_cast<int64_t>(a.ElementLength()) < min_len) {
      fail(std::string(key) + " holds " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(min_len));
    }
    return a.Data();
  }

  const float* f32(const char* key, int64_t min_len) const {
    return typed<float, napi_float32_array>(key, min_len, "Float32Array");
  }

  double* f64(const char* key, int64_t min_len) const {
    return typed<double, napi_float64_array>(key, min_len, "Float64Array");
  }

  uint32_t* u32(const char* key, int64_t min_len) const {
    return typed<uint32_t, napi_uint32_array>(key, min_len, "Uint32Array");
  }

  int64_t* i64(const char* key, int64_t min_len) const {
    return typed<int64_t, napi_bigint64_array>(key, min_len, "BigInt64Array");
  }

  TensorRef tensor(const char* key, const char* dtype_key, int64_t count, bool nullable = false) const {
    TensorRef t;
    t.dtype = dtype(dtype_key);
    t.data = bytes(get(key), key, count * dtype_size(t.dtype), nullable);
    return t;
  }

  std::vector<TensorRef> tensors(const char* key, const char* dtypes_key, int64_t count) const {
    Napi::Value v = get(key);
    if (!v.IsArray()) fail(std::string(key) + " must be an array of Uint8Array");
    Napi::Array arr = v.As<Napi::Array>();
    const uint32_t n = arr.Length();
    const int32_t* codes = typed<int32_t, napi_int32_array>(dtypes_key, n, "Int32Array");
    std::vector<TensorRef> out(n);
    for (uint32_t i = 0; i < n; ++i) {
      if (codes[i] < 0 || codes[i] > kF64) fail(std::string(dtypes_key) + " holds a bad dtype code");
      out[i].dtype = codes[i];
      out[i].data = bytes(arr.Get(i), std::string(key) + "[" + std::to_string(i) + "]", count * dtype_size(codes[i]), false);
    }
    return out;
  }

  // A mask source (binding.ts MaskSource): null, a Uint8Array of at least `count` bytes, or a
  // bernoulli / rank rule object.
  MaskRule mask_rule(Napi::Value v, const std::string& name, int64_t count) const {
    MaskRule r;
    if (v.IsNull() || v.IsUndefined()) return r;
    if (v.IsTypedArray()) {
      r.kind = MaskRule::kBytes;
      r.bytes = bytes(v, name, count, false);
      return r;
    }
    if (!v.IsObject()) fail(name + " must be null, a Uint8Array or a mask rule");
    Napi::Object o = v.As<Napi::Object>();
    auto num = [&](const char* key) {
      Napi::Value f = o.Get(key);
      if (!f.IsNumber()) fail(name + "." + key + " must be a number");
      return f.As<Napi::Number>().DoubleValue();
    };
    auto whole = [&](const char* key, double max) {
      const double d = num(key);
      if (!(d >= 0 && d <= max) || std::floor(d) != d) fail(name + "." + key + " must be an integer in [0, " + std::to_string(max) + "]");
      return d;
    };
    Napi::Value kind = o.Get("kind");
    const std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
    if (k == "bernoulli") {
      r.kind = MaskRule::kBernoulli;
      r.key0 = static_cast<uint32_t>(whole("key0", 4294967295.0));
      r.key1 = static_cast<uint32_t>(whole("key1", 4294967295.0));
      r.threshold = num("threshold");
      r.index_offset = static_cast<int64_t>(whole("indexOffset", 9007199254740991.0));
    } else if (k == "rank") {
      r.kind = MaskRule::kRank;
      // Ranks count in the whole tensor, of which the buffers may be a row chunk: bounded by the
      // rank kernels' 2^32 elements, not by `count`.
      r.lo = static_cast<int64_t>(whole("lo", 4294967295.0));
      r.hi = static_cast<int64_t>(whole("hi", 4294967295.0));
      r.key_lo = static_cast<uint32_t>(whole("keyLo", 4294967295.0));
      r.key_hi = static_cast<uint32_t>(whole("keyHi", 4294967295.0));
      r.before_lo = static_cast<int64_t>(whole("beforeLo", 4294967295.0));
      r.before_hi = static_cast<int64_t>(whole("beforeHi", 4294967295.0));
      if (r.lo > r.hi) fail(name + ": need lo <= hi");
      Napi::Value d = o.Get("descending");
      if (!d.IsBoolean()) fail(name + ".descending must be a boolean");
      r.descending = d.As<Napi::Boolean>().Value();
    } else {
      fail(name + ".kind must be 'bernoulli' or 'rank'");
    }
    return r;
  }

  void range(int64_t* start, int64_t* end, int64_t limit) const {
    *start = integer("start");
    *end = integer("end");
    if (*start > *end) fail("start must not exceed end");
    if (limit >= 0 && *end > limit) fail("end lies past the tensor");
  }

  void layout(int64_t* outer, int64_t* len, int64_t* inner) const {
    *outer = integer("outer");
    *len = integer("len");
    *inner = integer("inner");
    if (*outer < 1 || *len < 1 || *inner < 1) fail("outer, len and inner must be at least 1");
  }

 private:
  Napi::Env env_;
  const char* kernel_;
  Napi::Object obj_;
};

Napi::Value ConvertDType(const Napi::CallbackInfo& info) {
  Args a(info, "convertDType");
  ConvertParams p;
  a.range(&p.start, &p.end, -1);
  p.src = a.tensor("src", "srcDType", p.end);
  p.round_dtype = a.compute_dtype("roundDType");
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  convert_dtype(p);
  return info.Env().Undefined();
}

Napi::Value LinearMerge(const Napi::CallbackInfo& info) {
  Args a(info, "linearMerge");
  LinearParams p;
  a.range(&p.start, &p.end, -1);
  p.inputs = a.tensors("inputs", "dtypes", p.end);
  p.weights = a.f32("weights", static_cast<int64_t>(p.inputs.size()));
  p.divisor = static_cast<float>(a.number("divisor"));
  p.compute = a.compute_dtype("computeDType");
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  linear_merge(p);
  return info.Env().Undefined();
}

Napi::Value TaskVectorMerge(const Napi::CallbackInfo& info) {
  Args a(info, "taskVectorMerge");
  TaskVectorParams p;
  a.range(&p.start, &p.end, -1);
  p.base = a.tensor("base", "baseDType", p.end);
  p.inputs = a.tensors("inputs", "dtypes", p.end);
  const int64_t n = static_cast<int64_t>(p.inputs.size());
  Napi::Value masks = a.get("masks");
  if (!masks.IsArray() || masks.As<Napi::Array>().Length() != static_cast<uint32_t>(n)) {
    a.fail("masks must be an array with one entry per input");
  }
  for (uint32_t i = 0; i < static_cast<uint32_t>(n); ++i) {
    p.masks.push_back(a.mask_rule(masks.As<Napi::Array>().Get(i), "masks[" + std::to_string(i) + "]", p.end));
    // A rank rule counts tied ranks from element 0 on.
    if (p.masks.back().kind == MaskRule::kRank && p.start != 0) a.fail("a rank mask rule needs start = 0");
  }
  p.scales = a.f32("scales", n);
  p.sparsify_dtype = a.compute_dtype("sparsifyDType");
  p.weights = a.f32("weights", n);
  p.consensus = a.boolean("consensus");
  p.elect_raw = a.boolean("electOnRaw");
  p.min_divisor = static_cast<float>(a.number("minDivisor"));
  p.normalize = a.boolean("normalize");
  p.divisor = static_cast<float>(a.number("divisor"));
  p.lambda = static_cast<float>(a.number("lambda"));
  p.compute = a.compute_dtype("computeDType");
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  task_vector_merge(p);
  return info.Env().Undefined();
}

// The arguments rankHistogram and rankLowHistogram share.
RankHistogramParams rank_params(const Args& a) {
  RankHistogramParams p;
  p.count = a.integer("count");
  if (p.count >= 4294967296LL) a.fail("count must be below 2^32");
  p.base = a.tensor("base", "baseDType", p.count);
  p.x = a.tensor("x", "xDType", p.count);
  p.compute = a.compute_dtype("computeDType");
  p.descending = a.boolean("descending");
  return p;
}

Napi::Value RankHistogram(const Napi::CallbackInfo& info) {
  Args a(info, "rankHistogram");
  RankHistogramParams p = rank_params(a);
  p.top = a.u32("top", 65536);
  p.low_bits = a.u32("lowBits", 2);
  rank_histogram(p);
  return info.Env().Undefined();
}

Napi::Value RankLowHistogram(const Napi::CallbackInfo& info) {
  Args a(info, "rankLowHistogram");
  RankHistogramParams p = rank_params(a);
  const int64_t lo = a.integer("bucketLo"), hi = a.integer("bucketHi");
  if (lo > 65535 || hi > 65535) a.fail("bucketLo and bucketHi must be below 65536");
  p.bucket_lo = static_cast<uint32_t>(lo);
  p.bucket_hi = static_cast<uint32_t>(hi);
  p.low_lo = a.u32("lowLo", 65536);
  p.low_hi = a.u32("lowHi", 65536);
  rank_low_histogram(p);
  return info.Env().Undefined();
}

Napi::Value BernoulliMask(const Napi::CallbackInfo& info) {
  Args a(info, "bernoulliMask");
  BernoulliMaskParams p;
  p.key0 = static_cast<uint32_t>(a.integer("key0"));
  p.key1 = static_cast<uint32_t>(a.integer("key1"));
  p.threshold = a.number("threshold");
  a.range(&p.start, &p.end, -1);
  p.mask = a.bytes(a.get("mask"), "mask", p.end, false);
  bernoulli_mask(p);
  return info.Env().Undefined();
}

Napi::Value DellaMask(const Napi::CallbackInfo& info) {
  Args a(info, "dellaMask");
  DellaMaskParams p;
  a.layout(&p.outer, &p.len, &p.inner);
  if (p.len >= 4294967296LL) a.fail("len must be below 2^32");
  const int64_t count = p.outer * p.len * p.inner;
  p.base = a.tensor("base", "baseDType", count);
  p.x = a.tensor("x", "xDType", count);
  p.compute = a.compute_dtype("computeDType");
  p.work = a.compute_dtype("workDType");
  p.key0 = static_cast<uint32_t>(a.integer("key0"));
  p.key1 = static_cast<uint32_t>(a.integer("key1"));
  p.index_offset = a.integer("indexOffset");
  p.low_p = static_cast<float>(a.number("lowP"));
  p.eps = static_cast<float>(a.number("eps"));
  p.mask = a.bytes(a.get("mask"), "mask", count, false);
  della_mask(p);
  return info.Env().Undefined();
}

Napi::Value MaskedL1(const Napi::CallbackInfo& info) {
  Args a(info, "maskedL1");
  MaskedL1Params p;
  p.count = a.integer("count");
  p.base = a.tensor("base", "baseDType", p.count);
  p.x = a.tensor("x", "xDType", p.count);
  p.compute = a.compute_dtype("computeDType");
  p.mask = a.mask_rule(a.get("mask"), "mask", p.count);
  p.out = a.i64("out", 2 * kL1Bins);
  masked_l1(p);
  return info.Env().Undefined();
}

Napi::Value GramStats(const Napi::CallbackInfo& info) {
  Args a(info, "gramStats");
  GramParams p;
  a.layout(&p.outer, &p.len, &p.inner);
  const int64_t count = p.outer * p.len * p.inner;
  p.inputs = a.tensors("inputs", "dtypes", count);
  p.base = a.tensor("base", "baseDType", count, true);
  p.mask = a.bytes(a.get("mask"), "mask", count, true);
  p.compute = a.compute_dtype("computeDType");
  {
    Napi::Value rp = a.get("roundProducts");
    p.round_products = rp.IsNull() || rp.IsUndefined() ? false : a.boolean("roundProducts");
  }
  const int64_t m = static_cast<int64_t>(p.inputs.size());
  if (m < 1) a.fail("inputs must not be empty");
  p.out = a.f64("out", p.outer * p.inner * (m * (m + 1) / 2));
  gram_stats(p);
  return info.Env().Undefined();
}

Napi::Value SlerpMix(const Napi::CallbackInfo& info) {
  Args a(info, "slerpMix");
  SlerpMixParams p;
  a.layout(&p.outer, &p.len, &p.inner);
  const int64_t count = p.outer * p.len * p.inner;
  a.range(&p.start, &p.end, count);
  p.v0 = a.tensor("v0", "v0DType", count);
  p.v1 = a.tensor("v1", "v1DType", count);
  p.base = a.tensor("base", "baseDType", count, true);
  p.compute = a.compute_dtype("computeDType");
  p.op = a.compute_dtype("opDType");
  const int64_t vectors = p.outer * p.inner;
  p.c0 = a.f32("c0", vectors);
  p.c1 = a.f32("c1", vectors);
  p.div = a.f32("div", vectors);
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  slerp_mix(p);
  return info.Env().Undefined();
}

Napi::Value ModelStockMix(const Napi::CallbackInfo& info) {
  Args a(info, "modelStockMix");
  ModelStockMixParams p;
  a.layout(&p.outer, &p.len, &p.inner);
  const int64_t count = p.outer * p.len * p.inner;
  a.range(&p.start, &p.end, count);
  p.base = a.tensor("base", "baseDType", count);
  p.inputs = a.tensors("inputs", "dtypes", count);
  if (p.inputs.empty()) a.fail("inputs must not be empty");
  p.compute = a.compute_dtype("computeDType");
  const int64_t vectors = p.outer * p.inner;
  p.t = a.f32("t", vectors);
  p.omt = a.f32("omt", vectors);
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  model_stock_mix(p);
  return info.Env().Undefined();
}

Napi::Value NearswapMerge(const Napi::CallbackInfo& info) {
  Args a(info, "nearswapMerge");
  NearswapParams p;
  a.range(&p.start, &p.end, -1);
  p.a = a.tensor("a", "aDType", p.end);
  p.b = a.tensor("b", "bDType", p.end);
  p.t = static_cast<float>(a.number("t"));
  p.compute = a.compute_dtype("computeDType");
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  nearswap_merge(p);
  return info.Env().Undefined();
}

Napi::Value SceVariance(const Napi::CallbackInfo& info) {
  Args a(info, "sceVariance");
  SceVarianceParams p;
  p.count = a.integer("count");
  p.base = a.tensor("base", "baseDType", p.count);
  p.inputs = a.tensors("inputs", "dtypes", p.count);
  if (p.inputs.empty()) a.fail("inputs must not be empty");
  p.compute = a.compute_dtype("computeDType");
  p.var = a.typed<float, napi_float32_array>("variance", p.count, "Float32Array");
  double* out = a.f64("out", 1);
  sce_variance(p);
  out[0] = p.nonzero;
  return info.Env().Undefined();
}

// The arguments multislerpTangent and multislerpMix share.
// The inputs every pass reads; multislerp_params adds the moments' results that tangent and mix need.
MultislerpParams multislerp_inputs(const Args& a, int64_t* count) {
  MultislerpParams p;
  *count = a.integer("count");
  p.inputs = a.tensors("inputs", "dtypes", *count);
  if (p.inputs.empty()) a.fail("inputs must not be empty");
  p.base = a.tensor("base", "baseDType", *count, true);
  p.compute = a.compute_dtype("computeDType");
  const int64_t m = static_cast<int64_t>(p.inputs.size());
  p.divisors = a.f32("divisors", m);
  p.weights = a.f32("weights", m);
  p.start = 0;
  p.end = *count;
  return p;
}

MultislerpParams multislerp_params(const Args& a, int64_t* count) {
  MultislerpParams p = multislerp_inputs(a, count);
  p.dots = a.f32("dots", static_cast<int64_t>(p.inputs.size()));
  p.mean_norm = static_cast<float>(a.number("meanNorm"));
  return p;
}

Napi::Value MultislerpTangent(const Napi::CallbackInfo& info) {
  Args a(info, "multislerpTangent");
  int64_t count = 0;
  MultislerpParams p = multislerp_params(a, &count);
  double* out = a.f64("out", 1);
  multislerp_tangent(p);
  out[0] = p.tangent_sq;
  return info.Env().Undefined();
}

Napi::Value MultislerpMoments(const Napi::CallbackInfo& info) {
  Args a(info, "multislerpMoments");
  int64_t count = 0;
  MultislerpParams p = multislerp_inputs(a, &count);
  p.with_dots = a.boolean("withDots");
  if (p.with_dots) p.mean_norm = static_cast<float>(a.number("meanNorm"));
  p.moments = a.f64("out", p.with_dots ? 1 + static_cast<int64_t>(p.inputs.size()) : 1);
  multislerp_moments(p);
  return info.Env().Undefined();
}

Napi::Value MultislerpMix(const Napi::CallbackInfo& info) {
  Args a(info, "multislerpMix");
  int64_t count = 0;
  MultislerpParams p = multislerp_params(a, &count);
  a.range(&p.start, &p.end, count);
  p.cos_t = static_cast<float>(a.number("cosT"));
  p.sinc_t = static_cast<float>(a.number("sincT"));
  p.scale = static_cast<float>(a.number("scale"));
  p.out_dtype = a.dtype("outDType");
  p.out = a.bytes(a.get("out"), "out", p.end * dtype_size(p.out_dtype), false);
  multislerp_mix(p);
  return info.Env().Undefined();
}

// What karcherTangent and karcherDots both read: the models, their norms and the direction ū.
KarcherParams karcher_inputs(const Args& a) {
  KarcherParams p;
  p.count = a.integer("count");
  p.inputs = a.tensors("inputs", "dtypes", p.count);
  p.compute = a.compute_dtype("computeDType");
  p.norms = a.f32("norms", static_cast<int64_t>(p.inputs.size()));
  p.u = a.typed<float, napi_float32_array>("u", p.count, "Float32Array");
  p.u_div = static_cast<float>(a.number("uDiv"));
  return p;
}

Napi::Value KarcherTangent(const Napi::CallbackInfo& info) {
  Args a(info, "karcherTangent");
  KarcherParams p = karcher_inputs(a);
  const int64_t m = static_cast<int64_t>(p.inputs.size());
  p.coefs = a.f32("coefs", m);
  p.dots = a.f32("dots", m);
  p.t = a.typed<float, napi_float32_array>("t", p.count, "Float32Array");
  double* out = a.f64("out", 1);
  karcher_tangent(p);
  out[0] = p.t_sq;
  return info.Env().Undefined();
}

Napi::Value KarcherStep(const Napi::CallbackInfo& info) {
  Args a(info, "karcherStep");
  KarcherParams p;
  p.count = a.integer("count");
  p.compute = a.compute_dtype("computeDType");
  p.u = a.typed<float, napi_float32_array>("u", p.count, "Float32Array");
  p.u_div = static_cast<float>(a.number("uDiv"));
  Napi::Value t = a.get("t");
  p.t = t.IsNull() || t.IsUndefined() ? nullptr : a.typed<float, napi_float32_array>("t", p.count, "Float32Array");
  p.cos_n = static_cast<float>(a.number("cosN"));
  p.sin_n = static_cast<float>(a.number("sinN"));
  p.norm_t = static_cast<float>(a.number("normT"));
  karcher_step(p);
  return info.Env().Undefined();
}

Napi::Value KarcherDots(const Napi::CallbackInfo& info) {
  Args a(info, "karcherDots");
  KarcherParams p = karcher_inputs(a);
  p.dots_out = a.f64("out", static_cast<int64_t>(p.inputs.size()));
  karcher_dots(p);
  return info.Env().Undefined();
}

// allocPages(byteLength): a zeroed ArrayBuffer for the merge workers' scratch. On Linux it is an
// anonymous mapping marked for transparent huge pages: first touching fresh 4 KiB pages costs
// more than the merge's arithmetic on some virtual machines (a page fault each), 2 MiB pages
// 512 times fewer faults. releasePages(buffer) detaches it and unmaps it at once (a worker knows
// when a task's buffers are dead; the collector would free them late); otherwise the mapping goes
// when the buffer is collected.
#if defined(__linux__)
struct Mapping {
  void* data;
  size_t length;
  bool released;
};

// The live mappings of this thread, by address: a buffer is only ever released or collected on
// the thread that allocated it.
thread_local std::unordered_map<void*, Mapping*> mappings;

void unmap(Napi::Env env, Mapping* m) {
  if (m->released) return;
  m->released = true;
  // The address may be mapped again at once: forget it before the entry could name a new mapping.
  auto it = mappings.find(m->data);
  if (it != mappings.end() && it->second == m) mappings.erase(it);
  munmap(m->data, m->length);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(m->length));
}
#endif

Napi::Value AllocPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "allocPages: expects a byte length");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || std::floor(d) != d) throw Napi::TypeError::New(env, "allocPages: byte length must be a positive integer");
  const size_t n = static_cast<size_t>(d);
#if defined(__linux__)
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Napi::RangeError::New(env, "allocPages: cannot map " + std::to_string(n) + " bytes");
#if defined(MADV_HUGEPAGE)
  madvise(p, n, MADV_HUGEPAGE);  // advice only: without THP the pages are ordinary
#endif
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(n));
  Mapping* m = new Mapping{p, n, false};
  mappings[p] = m;
  return Napi::ArrayBuffer::New(
      env, p, n,
      [](Napi::Env e, void*, Mapping* hint) {
        unmap(e, hint);
        delete hint;
      },
      m);
#else
  return Napi::ArrayBuffer::New(env, n);
#endif
}

Napi::Value ReleasePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "releasePages: expects an ArrayBuffer");
#if defined(__linux__)
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  auto it = mappings.find(ab.Data());
  // Not one of ours (or already released): the collector frees it as usual.
  if (it == mappings.end() || ab.ByteLength() != it->second->length) return env.Undefined();
  ab.Detach();
  unmap(env, it->second);
#endif
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 5));
  exports.Set("allocPages", Napi::Function::New(env, AllocPages, "allocPages"));
  exports.Set("releasePages", Napi::Function::New(env, ReleasePages, "releasePages"));
  exports.Set("convertDType", Napi::Function::New(env, ConvertDType, "convertDType"));
  exports.Set("linearMerge", Napi::Function::New(env, LinearMerge, "linearMerge"));
  exports.Set("taskVectorMerge", Napi::Function::New(env, TaskVectorMerge, "taskVectorMerge"));
  exports.Set("rankHistogram", Napi::Function::New(env, RankHistogram, "rankHistogram"));
  exports.Set("rankLowHistogram", Napi::Function::New(env, RankLowHistogram, "rankLowHistogram"));
  exports.Set("bernoulliMask", Napi::Function::New(env, BernoulliMask, "bernoulliMask"));
  exports.Set("dellaMask", Napi::Function::New(env, DellaMask, "dellaMask"));
  exports.Set("maskedL1", Napi::Function::New(env, MaskedL1, "maskedL1"));
  exports.Set("gramStats", Napi::Function::New(env, GramStats, "gramStats"));
  exports.Set("slerpMix", Napi::Function::New(env, SlerpMix, "slerpMix"));
  exports.Set("modelStockMix", Napi::Function::New(env, ModelStockMix, "modelStockMix"));
  exports.Set("nearswapMerge", Napi::Function::New(env, NearswapMerge, "nearswapMerge"));
  exports.Set("sceVariance", Napi::Function::New(env, SceVariance, "sceVariance"));
  exports.Set("multislerpTangent", Napi::Function::New(env, MultislerpTangent, "multislerpTangent"));
  exports.Set("multislerpMix", Napi::Function::New(env, MultislerpMix, "multislerpMix"));
  exports.Set("multislerpMoments", Napi::Function::New(env, MultislerpMoments, "multislerpMoments"));
  exports.Set("karcherTangent", Napi::Function::New(env, KarcherTangent, "karcherTangent"));
  exports.Set("karcherStep", Napi::Function::New(env, KarcherStep, "karcherStep"));
  exports.Set("karcherDots", Napi::Function::New(env, KarcherDots, "karcherDots"));
  return exports;
}

}  // namespace

NODE_API_MODULE(evomerge_kernels, Init)
