// GCC 12 warns about _mm512_undefined_ps() inside its own intrinsics headers (as rnn_cell_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "cpu/rnn_step_matmul.h"

#include <string>

#include "cpu/bf16.h"
#include "cpu/rnn_cell_avx512.h"

namespace ds2rt::detail::cpu {

namespace {

using namespace avx512;
using dnnl::memory;

// The cell of every row and unit from the products (rows x G*H, canonical gates). int8: the
// products are int32 sums of u8 h (zero point 128) times s8 weights, scaled back exactly as the
// fused int8 step does, so both paths give the same numbers.
template <RNNCell C, bool Int8>
DS2RT_AVX512 void finish(const StepArgs& a, const void* products, const PackedRecurrentInt8* packed) {
  constexpr int G = kGates<C>;
  const int64_t hidden = a.hidden, gh = G * hidden;
  for (int64_t row = 0; row < a.rows; ++row)
    for (int64_t block = a.block_begin; block < a.block_end; ++block) {
      const int64_t unit = block * kUnitBlock;
      const __mmask16 mask =
          unit + kUnitBlock <= hidden ? __mmask16(0xFFFF) : __mmask16((1u << (hidden - unit)) - 1);
      __m512 acc[1][G];
      for (int g = 0; g < G; ++g) {
        const int64_t at = row * gh + g * hidden + unit;
        if constexpr (Int8) {
          const int64_t column = (block * G + g) * kUnitBlock;
          const __m512i sum = _mm512_maskz_loadu_epi32(mask, static_cast<const int32_t*>(products) + at);
          const __m512i offset = _mm512_loadu_si512(packed->offset.get() + column);
          const __m512 scale = _mm512_loadu_ps(packed->scale.get() + column);
          acc[0][g] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, offset)),
                                    _mm512_mul_ps(scale, _mm512_set1_ps(a.h_scale[row])));
        } else {
          acc[0][g] = _mm512_maskz_loadu_ps(mask, static_cast<const float*>(products) + at);
        }
      }
      finishRows<C, G, 1>(a, block, row, acc);
    }
}

memory::desc productsDesc(int64_t rows, int64_t columns, bool int8) {
  return memory::desc({rows, columns}, int8 ? memory::data_type::s32 : memory::data_type::f32, memory::format_tag::ab);
}

dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace

MatmulRecurrent::MatmulRecurrent(const int8_t* quantized, int gates, int64_t hidden, bool tiles)
    : gates_(gates), hidden_(hidden), depth_((hidden + 3) / 4 * 4), int8_(true) {
  if (tiles) int8_tiles_ = Int8TileGemm(quantized, gates * hidden, hidden);
  else reorder(quantized);
}

MatmulRecurrent::MatmulRecurrent(const float* weight, int gates, int64_t hidden, Kernel kernel)
    : gates_(gates), hidden_(hidden), depth_((hidden + 1) / 2 * 2), int8_(false) {
  if (kernel != Kernel::kOneDnn) {
    tiles_ = BF16x3Gemm(weight, gates * hidden, hidden, kernel == Kernel::kTilesBF16x3);
    return;
  }
  std::vector<uint16_t> plain(gates * hidden * hidden);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = toBF16(weight[i]);
  reorder(plain.data());
}

void MatmulRecurrent::reorder(const void* plain) {
  const int64_t gh = gates_ * hidden_;
  const auto type = int8_ ? memory::data_type::s8 : memory::data_type::bf16;
  // The layout oneDNN picks for one row count; primitive() checks that other counts take it too.
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const memory::desc any({hidden_, gh}, type, memory::format_tag::any);
  const int64_t rows = minRows(int8_, 1);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(source(rows), any, productsDesc(rows, gh, int8_)),
                                        userScratchpad(), engine);
  weights_desc_ = pd.weights_desc();
  weights_.resize(weights_desc_.get_size());
  memory from({{hidden_, gh}, type, memory::format_tag::ba}, engine, const_cast<void*>(plain));
  memory to(weights_desc_, engine, weights_.data());
  dnnl::stream stream(engine);
  dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
}

memory::desc MatmulRecurrent::source(int64_t rows) const {
  return memory::desc({rows, hidden_}, int8_ ? memory::data_type::u8 : memory::data_type::bf16,
                      memory::dims{depth_, 1});
}

const MatmulRecurrent::State::Compiled& MatmulRecurrent::primitive(State& state, int64_t rows) const {
  auto found = state.primitives.find(rows);
  if (found != state.primitives.end()) return found->second;
  State::Compiled made;
  try {
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(source(rows), weights_desc_, productsDesc(rows, gates_ * hidden_, int8_)),
        userScratchpad(), state.engine);
    // Only oneDNN's AMX kernels beat the fused steps; a reference kernel taking any layout would not.
    if (std::string(pd.impl_info_str()).find("amx") != std::string::npos) {
      made = {dnnl::matmul(pd), pd.scratchpad_desc()};
      if (made.scratchpad.get_size() > state.scratchpad.size()) state.scratchpad.resize(made.scratchpad.get_size());
    }
  } catch (const dnnl::error&) {  // no implementation for this layout: the fused step runs
  }
  return state.primitives.emplace(rows, std::move(made)).first->second;
}

void MatmulRecurrent::stepOnTiles(State& state, const StepArgs& a, const PackedRecurrentInt8* packed) const {
  const int64_t rows = a.rows, gh = gates_ * hidden_;
  const size_t bytes = (int8_ ? int8_tiles_.workspaceBytes(rows) : tiles_.workspaceBytes(rows)) + 64;
  if (state.scratchpad.size() < bytes) state.scratchpad.resize(bytes);
  uint8_t* workspace = state.scratchpad.data() + (64 - reinterpret_cast<uintptr_t>(state.scratchpad.data()) % 64) % 64;
  const int64_t unit_begin = a.block_begin * kUnitBlock, unit_end = std::min(hidden_, a.block_end * kUnitBlock);
  if (int8_) {  // the integer sums of the fused int8 step, finished by its scales and offsets
    quantizeActivations(a.h_prev, rows, hidden_, hidden_, a.h_quantized, depth_, a.h_scale);
    auto* sums = reinterpret_cast<int32_t*>(state.products.data());
    int8_tiles_.runColumns(a.h_quantized, depth_, rows, sums, gh, workspace, gates_, hidden_, unit_begin, unit_end);
    dispatchCell(a.cell, [&]<RNNCell C>() { finish<C, true>(a, sums, packed); });
  } else {
    tiles_.runColumns(a.h_prev, hidden_, rows, state.products.data(), gh, workspace, gates_, hidden_, unit_begin,
                      unit_end);
    dispatchCell(a.cell, [&]<RNNCell C>() { finish<C, false>(a, state.products.data(), nullptr); });
  }
}

bool MatmulRecurrent::step(State& state, const StepArgs& a, const PackedRecurrentInt8* packed) const {
  const int64_t rows = a.rows, gh = gates_ * hidden_;
  if (state.products.size() < static_cast<size_t>(rows * gh)) state.products.resize(rows * gh);
  if (onTiles()) {
    stepOnTiles(state, a, packed);
    return true;
  }
  const State::Compiled& compiled = primitive(state, rows);
  if (!compiled.matmul) return false;
  if (int8_) quantizeActivations(a.h_prev, rows, hidden_, hidden_, a.h_quantized, depth_, a.h_scale);
  else convertToBF16(a.h_prev, rows, hidden_, hidden_, a.h_bf16, depth_);
  void* h = int8_ ? static_cast<void*>(a.h_quantized) : static_cast<void*>(a.h_bf16);
  const dnnl::engine& engine = state.engine;
  compiled.matmul.execute(
      state.stream, {{DNNL_ARG_SRC, memory(source(rows), engine, h)},
                     {DNNL_ARG_WEIGHTS, memory(weights_desc_, engine, const_cast<uint8_t*>(weights_.data()))},
                     {DNNL_ARG_DST, memory(productsDesc(rows, gh, int8_), engine, state.products.data())},
                     {DNNL_ARG_SCRATCHPAD, memory(compiled.scratchpad, engine, state.scratchpad.data())}});
  state.stream.wait();
  StepArgs every_unit = a;
  every_unit.block_begin = 0;
  every_unit.block_end = (hidden_ + kUnitBlock - 1) / kUnitBlock;
  dispatchCell(a.cell, [&]<RNNCell C>() {
    if (int8_) finish<C, true>(every_unit, state.products.data(), packed);
    else finish<C, false>(every_unit, state.products.data(), nullptr);
  });
  return true;
}

}  // namespace ds2rt::detail::cpu
