// N-API glue for the training kernels: positional arguments (they are called thousands of times a
// step), every buffer checked against the extent the kernel will touch before any pointer is used.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "train-kernels.h"

namespace {

using namespace evotrain;

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* kernel, size_t count) : info_(info), kernel_(kernel) {
    if (info.Length() != count) fail("expects " + std::to_string(count) + " arguments, got " + std::to_string(info.Length()));
  }
  [[noreturn]] void fail(const std::string& what) const { throw Napi::TypeError::New(info_.Env(), std::string(kernel_) + ": " + what); }

  int64_t integer(size_t i, const char* name) const {
    if (!info_[i].IsNumber()) fail(std::string(name) + " must be a number");
    const double d = info_[i].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) fail(std::string(name) + " must be a non-negative integer");
    return static_cast<int64_t>(d);
  }
  bool boolean(size_t i, const char* name) const {
    if (!info_[i].IsBoolean()) fail(std::string(name) + " must be a boolean");
    return info_[i].As<Napi::Boolean>().Value();
  }
  double real(size_t i, const char* name) const {
    if (!info_[i].IsNumber()) fail(std::string(name) + " must be a number");
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  template <class T, napi_typedarray_type kType>
  T* typed(size_t i, const char* name, int64_t extent, const char* type_name, bool nullable = false) const {
    if (nullable && info_[i].IsNull()) return nullptr;
    if (!info_[i].IsTypedArray() || info_[i].As<Napi::TypedArray>().TypedArrayType() != kType) fail(std::string(name) + " must be a " + type_name);
    Napi::TypedArrayOf<T> a = info_[i].As<Napi::TypedArrayOf<T>>();
    if (extent > static_cast<int64_t>(a.ElementLength())) {
      fail(std::string(name) + " holds " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(extent));
    }
    return a.Data();
  }
  float* f32n(size_t i, const char* name, int64_t extent, bool nullable = false) const { return typed<float, napi_float32_array>(i, name, extent, "Float32Array", nullable); }

  // A Float32Array of which elements [offset, offset + extent) are touched.
  float* f32(size_t i, const char* name, int64_t offset, int64_t extent) const {
    return f32n(i, name, extent > 0 ? offset + extent : 0) + offset;
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* kernel_;
};

// Highest element index touched by a strided 2-D access, plus one (0 for an empty matrix).
int64_t extent(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if (rows == 0 || cols == 0) return 0;
  return (rows - 1) * row_stride + (cols - 1) * col_stride + 1;
}

int threads_of(const Args& a, size_t i) {
  const int64_t t = a.integer(i, "threads");
  if (t < 1 || t > 256) a.fail("threads must be in 1..256");
  return static_cast<int>(t);
}

// gemm(a, aOffset, sam, sak, b, bOffset, ldb, c, cOffset, ldc, m, n, k, accumulate, threads)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm", 15);
  GemmParams p;
  const int64_t ao = a.integer(1, "aOffset"), bo = a.integer(5, "bOffset"), co = a.integer(8, "cOffset");
  p.sam = a.integer(2, "sam");
  p.sak = a.integer(3, "sak");
  p.ldb = a.integer(6, "ldb");
  p.ldc = a.integer(9, "ldc");
  p.m = a.integer(10, "m");
  p.n = a.integer(11, "n");
  p.k = a.integer(12, "k");
  if (p.ldc < p.n || p.ldb < p.n) a.fail("ldb and ldc must be at least n");
  p.accumulate = a.boolean(13, "accumulate");
  const int threads = threads_of(a, 14);
  p.a = a.f32(0, "a", ao, extent(p.m, p.k, p.sam, p.sak));
  p.b = a.f32(4, "b", bo, extent(p.k, p.n, p.ldb, 1));
  p.c = a.f32(7, "c", co, extent(p.m, p.n, p.ldc, 1));
  gemm(p, threads);
  return info.Env().Undefined();
}

AttentionShape shape_of(const Args& a) {
  AttentionShape s;
  s.batch = a.integer(0, "batch");
  s.seq = a.integer(1, "seq");
  s.heads = a.integer(2, "heads");
  s.kv_heads = a.integer(3, "kvHeads");
  s.head_dim = a.integer(4, "headDim");
  if (s.kv_heads < 1 || s.heads % s.kv_heads != 0) a.fail("heads must be a positive multiple of kvHeads");
  if (s.head_dim < 1) a.fail("headDim must be at least 1");
  return s;
}

// attentionForward(batch, seq, heads, kvHeads, headDim, q, k, v, o, p, threads)
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward", 11);
  const AttentionShape s = shape_of(a);
  const int64_t n = s.batch * s.seq, qn = n * s.heads * s.head_dim, kn = n * s.kv_heads * s.head_dim;
  const float* q = a.f32(5, "q", 0, qn);
  const float* k = a.f32(6, "k", 0, kn);
  const float* v = a.f32(7, "v", 0, kn);
  float* o = a.f32(8, "o", 0, qn);
  float* p = a.f32(9, "p", 0, s.batch * s.heads * s.seq * s.seq);
  attention_forward(s, q, k, v, o, p, threads_of(a, 10));
  return info.Env().Undefined();
}

// attentionBackward(batch, seq, heads, kvHeads, headDim, q, k, v, p, dout, dq, dk, dv, threads)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward", 14);
  const AttentionShape s = shape_of(a);
  const int64_t n = s.batch * s.seq, qn = n * s.heads * s.head_dim, kn = n * s.kv_heads * s.head_dim;
  const float* q = a.f32(5, "q", 0, qn);
  const float* k = a.f32(6, "k", 0, kn);
  const float* v = a.f32(7, "v", 0, kn);
  const float* p = a.f32(8, "p", 0, s.batch * s.heads * s.seq * s.seq);
  const float* dout = a.f32(9, "dout", 0, qn);
  float* dq = a.f32(10, "dq", 0, qn);
  float* dk = a.f32(11, "dk", 0, kn);
  float* dv = a.f32(12, "dv", 0, kn);
  attention_backward(s, q, k, v, p, dout, dq, dk, dv, threads_of(a, 13));
  return info.Env().Undefined();
}

// rmsNormForward(x, w, y, inv, n, e, eps, threads)
Napi::Value RmsNormForward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsNormForward", 8);
  const int64_t n = a.integer(4, "n"), e = a.integer(5, "e");
  rmsnorm_forward(a.f32n(0, "x", n * e), a.f32n(1, "w", e), a.f32n(2, "y", n * e), a.f32n(3, "inv", n), n, e, a.real(6, "eps"), threads_of(a, 7));
  return info.Env().Undefined();
}

// rmsNormBackward(x, w, inv, dy, dx | null, dw | null, n, e, threads)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsNormBackward", 9);
  const int64_t n = a.integer(6, "n"), e = a.integer(7, "e");
  rmsnorm_backward(a.f32n(0, "x", n * e), a.f32n(1, "w", e), a.f32n(2, "inv", n), a.f32n(3, "dy", n * e), a.f32n(4, "dx", n * e, true), a.f32n(5, "dw", e, true), n, e, threads_of(a, 8));
  return info.Env().Undefined();
}

// rope(x, y, cos, sin, n, features, headDim, seq, sign, add, threads)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args a(info, "rope", 11);
  const int64_t n = a.integer(4, "n"), features = a.integer(5, "features"), head_dim = a.integer(6, "headDim"), seq = a.integer(7, "seq");
  if (head_dim < 2 || head_dim % 2 != 0 || features % head_dim != 0) a.fail("headDim must be even and divide features");
  if (seq < 1) a.fail("seq must be at least 1");
  const int64_t table = std::min(n, seq) * (head_dim / 2);
  rope_apply(a.f32n(0, "x", n * features), a.f32n(1, "y", n * features), a.f32n(2, "cos", table), a.f32n(3, "sin", table), n, features, head_dim, seq,
             static_cast<float>(a.real(8, "sign")), a.boolean(9, "add"), threads_of(a, 10));
  return info.Env().Undefined();
}

// swigluForward(gate, up, y, sig, count, threads)
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluForward", 6);
  const int64_t c = a.integer(4, "count");
  swiglu_forward(a.f32n(0, "gate", c), a.f32n(1, "up", c), a.f32n(2, "y", c), a.f32n(3, "sig", c), c, threads_of(a, 5));
  return info.Env().Undefined();
}

// swigluBackward(gate, up, sig, dy, dgate, dup, count, threads)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluBackward", 8);
  const int64_t c = a.integer(6, "count");
  swiglu_backward(a.f32n(0, "gate", c), a.f32n(1, "up", c), a.f32n(2, "sig", c), a.f32n(3, "dy", c), a.f32n(4, "dgate", c), a.f32n(5, "dup", c), c, threads_of(a, 7));
  return info.Env().Undefined();
}

// crossEntropy(logits, targets, mask, rowLoss, dlogits | null, scale, n, v, threads)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropy", 9);
  const int64_t n = a.integer(6, "n"), v = a.integer(7, "v");
  const int32_t* targets = a.typed<int32_t, napi_int32_array>(1, "targets", n, "Int32Array");
  const uint8_t* mask = a.typed<uint8_t, napi_uint8_array>(2, "mask", n, "Uint8Array");
  for (int64_t i = 0; i < n; ++i) {
    if (mask[i] == 1 && (targets[i] < 0 || targets[i] >= v)) a.fail("target id " + std::to_string(targets[i]) + " at position " + std::to_string(i) + " is outside the vocabulary of " + std::to_string(v));
  }
  cross_entropy(a.f32n(0, "logits", n * v), targets, mask, a.typed<double, napi_float64_array>(3, "rowLoss", n, "Float64Array"), a.f32n(4, "dlogits", n * v, true),
                a.real(5, "scale"), n, v, threads_of(a, 8));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("rmsNormForward", Napi::Function::New(env, RmsNormForward, "rmsNormForward"));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward, "rmsNormBackward"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("swigluForward", Napi::Function::New(env, SwigluForward, "swigluForward"));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward, "swigluBackward"));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy, "crossEntropy"));
  return exports;
}

}  // namespace

NODE_API_MODULE(evomerge_train_kernels, Init)
