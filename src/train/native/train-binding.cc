// N-API glue for the training kernels: positional arguments (they are called thousands of times a
// step), every buffer checked against the extent the kernel will touch before any pointer is used.
#include <napi.h>

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
  // A Float32Array of which elements [offset, offset + extent) are touched.
  float* f32(size_t i, const char* name, int64_t offset, int64_t extent) const {
    if (!info_[i].IsTypedArray() || info_[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail(std::string(name) + " must be a Float32Array");
    Napi::Float32Array a = info_[i].As<Napi::Float32Array>();
    if (extent > 0 && offset + extent > static_cast<int64_t>(a.ElementLength())) {
      fail(std::string(name) + " holds " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(offset + extent));
    }
    return a.Data() + offset;
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  return exports;
}

}  // namespace

NODE_API_MODULE(evomerge_train_kernels, Init)
