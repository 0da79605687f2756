// What every FFTW user in the library shares: its allocator's RAII buffers and the planner lock.
#pragma once

#include <fftw3.h>

#include <memory>
#include <mutex>

namespace ds2rt::detail {

struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};
// FFTW-aligned memory: a plan's new-array execute needs the alignment the plan was made with.
template <typename T>
using FftwBuffer = std::unique_ptr<T[], FftwFree>;

// FFTW's planner (plan creation and destruction) is not thread-safe; fftwf_execute_* is. Every
// plan in the process is made and destroyed under this lock.
std::mutex& fftwPlannerMutex();

// `count` elements of T from fftwf_malloc (an error naming the size if it fails).
template <typename T>
FftwBuffer<T> fftwAllocate(size_t count);

}  // namespace ds2rt::detail
