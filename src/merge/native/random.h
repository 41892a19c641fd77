// The counter-based generator of DARE / DELLA masks; the TypeScript twin is src/merge/random.ts.
// A draw is a pure function of (stream key, element index), so masks do not depend on the
// pool size, the chunking or the order in which tensors are computed (design.md, Randomness).
#pragma once

#include <cstdint>

namespace evomerge {

// A 32-bit finaliser (xorshift-multiply, bijective on 32 bits).
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x *= 0x735A2D97u;
  x ^= x >> 15;
  return x;
}

// The 32-bit draw for element `index` of the stream (key0, key1).
inline uint32_t draw32(uint32_t key0, uint32_t key1, uint64_t index) {
  const uint32_t lo = static_cast<uint32_t>(index);
  const uint32_t hi = static_cast<uint32_t>(index >> 32);
  const uint32_t a = mix32(lo ^ key0);
  return mix32(a + key1 + hi * 0x85EBCA6Bu);
}

// Bernoulli(p) as an integer comparison: keep iff draw < threshold, threshold = ceil(p * 2^32).
inline bool keep_draw(uint32_t key0, uint32_t key1, uint64_t index, double threshold) {
  return static_cast<double>(draw32(key0, key1, index)) < threshold;
}

}  // namespace evomerge
