// Input lengths that share a timed choice (the convolutions' cuDNN algorithm, layout and phase plan).
// A server meets a new utterance length with nearly every request; searching every candidate again
// for each one would cost far more than the inference. Lengths within a quarter octave of each other
// share what the first of them measured (the fastest algorithm does not change over such a step).
#pragma once

#include <cstdint>

namespace ds2rt::detail::cuda {

// The smallest m x 2^e with m in {4, 5, 6, 7} that is >= n (n itself below 8): buckets at most 25%
// wide (4-7, 8 10 12 14, 16 20 24 28, ..., 1024 1280 1536 1792, ...).
inline int64_t tuningBucket(int64_t n) {
  if (n < 8) return n;
  int64_t step = 1;
  while (n > 7 * step) step *= 2;
  return (n + step - 1) / step * step;
}

}  // namespace ds2rt::detail::cuda
