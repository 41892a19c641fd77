#include <vector>

#include "kernels.h"
#include "numeric.h"

namespace evomerge {

EVOMERGE_MULTIVERSION void convert_dtype(const ConvertParams& p) {
  std::vector<float> buf(kBlock);
  for (int64_t j = p.start; j < p.end; j += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, p.end - j);
    load_block(p.src.data, p.src.dtype, j, n, buf.data(), p.round_dtype);
    store_block(buf.data(), n, p.out, p.out_dtype, j);
  }
}

}  // namespace evomerge
