// Element formats and per-operation rounding shared by every kernel. The TypeScript twin is
// numeric.ts; both must give the same bits, so every rounding here is written out by hand
// (no reliance on the FPU's f16 support) and the build disables FMA contraction.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Kernel entry points are compiled three times, for AVX-512 (x86-64-v4), AVX2 and the baseline
// x86-64 ISA, and the loader picks one per CPU (function multiversioning; `flatten` pulls the loops
// into each clone). All give the same bits: IEEE operations either way, no reassociation, and the
// build disables FMA contraction. The AVX-512 clone cut dare_ties' CPU time by a third in
// `npm run bench -- merge` on an AVX-512 machine (the mask draws); other methods gained little.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define EVOMERGE_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"), flatten))
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
// GCC before 11 has no x86-64-v4 level name.
#define EVOMERGE_MULTIVERSION __attribute__((target_clones("avx2", "default"), flatten))
#else
#define EVOMERGE_MULTIVERSION
#endif

namespace evomerge {

// Stored-dtype codes (numeric.ts KERNEL_DTYPE). F32/F16/BF16 are also the compute dtypes.
enum DTypeCode : int { kF32 = 0, kF16 = 1, kBF16 = 2, kF64 = 3 };

// Elements processed per block: the kernels decode a block of each input into f32 scratch,
// work on the block with plain loops the compiler can vectorise, and encode the result.
constexpr int64_t kBlock = 512;

// A sum kept in four f64 lanes by element index (j & 3), so that it vectorises in a fixed order;
// the lanes are added pairwise, as the TypeScript twins' laneTotal does.
inline double lane_total(const double* l) { return (l[0] + l[1]) + (l[2] + l[3]); }

// Adds v[k]² (in f64) for elements j + k, k < n, to their lanes.
inline void add_squares(double* lanes, const float* v, int64_t j, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const double x = v[k];
    lanes[(j + k) & 3] += x * x;
  }
}

inline int dtype_size(int d) { return d == kF64 ? 8 : d == kF32 ? 4 : 2; }

inline uint32_t f32_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

inline float bits_f32(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

constexpr uint32_t kCanonicalNanF32 = 0x7FC00000u;
constexpr uint16_t kCanonicalNanBf16 = 0x7FC0u;
constexpr uint16_t kCanonicalNanF16 = 0x7E00u;

// Round to nearest even; every NaN becomes the canonical quiet NaN.
// Written as a select rather than an early return, so that loops calling it vectorise.
inline uint16_t f32_to_bf16_bits(float x) {
  const uint32_t b = f32_bits(x);
  const uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((b & 0x7FFFFFFFu) > 0x7F800000u ? kCanonicalNanBf16 : rounded);
}

inline float bf16_bits_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

// Round to nearest even, with subnormals; finite values past 65504 (from 65520 up) become ±Inf.
inline uint16_t f32_to_f16_bits(float x) {
  const uint32_t b = f32_bits(x);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return kCanonicalNanF16;
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (a < 0x38800000u) {
    if (a <= 0x33000000u) return static_cast<uint16_t>(sign);  // |x| <= 2^-25 rounds to zero
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24: units of 2^-24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (a - 0x38000000u) >> 13;
  const uint32_t rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
  return static_cast<uint16_t>(sign | r);
}

inline float f16_bits_to_f32_compute(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x3FFu;
  if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13));
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m * 2^-24, exact
    return sign ? -v : v;
  }
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

// f16 -> f32 lookup table, filled once per process (thread-safe static initialisation).
struct F16Table {
  float v[65536];
  F16Table() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = f16_bits_to_f32_compute(static_cast<uint16_t>(i));
  }
};

inline const float* f16_table() {
  static const F16Table table;
  return table.v;
}

struct RoundF32 {
  static constexpr int kCode = kF32;
  static inline float r(float x) { return x; }
};

struct RoundBF16 {
  static constexpr int kCode = kBF16;
  static inline float r(float x) {
    const uint32_t b = f32_bits(x);
    const uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
    return bits_f32((b & 0x7FFFFFFFu) > 0x7F800000u ? kCanonicalNanF32 : rounded);  // a select: vectorises
  }
};

struct RoundF16 {
  static constexpr int kCode = kF16;
  static inline float r(float x) { return f16_table()[f32_to_f16_bits(x)]; }
};

inline float round_to(int code, float x) {
  switch (code) {
    case kBF16: return RoundBF16::r(x);
    case kF16: return RoundF16::r(x);
    default: return x;
  }
}

inline void round_block(int code, float* x, int64_t n) {
  switch (code) {
    case kBF16:
      for (int64_t k = 0; k < n; ++k) x[k] = RoundBF16::r(x[k]);
      break;
    case kF16:
      for (int64_t k = 0; k < n; ++k) x[k] = RoundF16::r(x[k]);
      break;
    default:
      break;
  }
}

// Decodes elements [start, start + n) of a little-endian tensor into f32, then rounds them to the
// compute dtype when the stored dtype differs (mergekit casts inputs to `dtype:` on load).
inline void load_block(const uint8_t* data, int dtype, int64_t start, int64_t n, float* dst, int compute) {
  switch (dtype) {
    case kF32:
      std::memcpy(dst, data + start * 4, static_cast<size_t>(n) * 4);
      break;
    case kBF16: {
      const uint8_t* p = data + start * 2;
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        dst[k] = bits_f32(static_cast<uint32_t>(h) << 16);
      }
      break;
    }
    case kF16: {
      const float* t = f16_table();
      const uint8_t* p = data + start * 2;
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        dst[k] = t[h];
      }
      break;
    }
    case kF64: {
      const uint8_t* p = data + start * 8;
      for (int64_t k = 0; k < n; ++k) {
        double d;
        std::memcpy(&d, p + 8 * k, 8);
        dst[k] = static_cast<float>(d);
      }
      break;
    }
    default:
      break;
  }
  if (dtype != compute) round_block(compute, dst, n);
}

// Encodes n f32 values as elements [start, start + n) of `data`; NaNs are written canonical.
inline void store_block(const float* src, int64_t n, uint8_t* data, int dtype, int64_t start) {
  switch (dtype) {
    case kF32: {
      uint8_t* p = data + start * 4;
      for (int64_t k = 0; k < n; ++k) {
        uint32_t b = f32_bits(src[k]);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) b = kCanonicalNanF32;
        std::memcpy(p + 4 * k, &b, 4);
      }
      break;
    }
    case kBF16: {
      uint8_t* p = data + start * 2;
      for (int64_t k = 0; k < n; ++k) {
        const uint16_t h = f32_to_bf16_bits(src[k]);
        std::memcpy(p + 2 * k, &h, 2);
      }
      break;
    }
    case kF16: {
      uint8_t* p = data + start * 2;
      for (int64_t k = 0; k < n; ++k) {
        const uint16_t h = f32_to_f16_bits(src[k]);
        std::memcpy(p + 2 * k, &h, 2);
      }
      break;
    }
    case kF64: {
      uint8_t* p = data + start * 8;
      for (int64_t k = 0; k < n; ++k) {
        float v = src[k];
        if (std::isnan(v)) v = bits_f32(kCanonicalNanF32);
        const double d = static_cast<double>(v);
        std::memcpy(p + 8 * k, &d, 8);
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace evomerge
