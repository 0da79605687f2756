// Building a word n-gram LM from text (ds2rt.build_lm, ds2rt.build_lm_text) and finding the bundled
// model (ds2rt.find_bundled_model), which ds2rt.transcribe uses when no model is named.
#include <nanobind/stl/array.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "ds2rt/bundled_model.h"
#include "ds2rt/error.h"
#include "ds2rt/lm_builder.h"

namespace ds2rt::python {

using namespace nb::literals;

namespace {

LmBuildOptions makeOptions(int order, std::optional<std::vector<int64_t>> prune, const std::string& text_case,
                           int64_t max_ngrams, std::array<double, 3> discount_fallback) {
  LmBuildOptions o;
  o.order = order;
  o.prune = prune.value_or(std::vector<int64_t>{});
  if (text_case == "lower") o.text_case = LmBuildOptions::Case::kLower;
  else if (text_case == "upper") o.text_case = LmBuildOptions::Case::kUpper;
  else check(text_case == "keep", "case must be 'keep', 'lower' or 'upper', got '", text_case, "'");
  o.max_ngrams = max_ngrams;
  o.discount_fallback = discount_fallback;
  o.validate();
  return o;
}

}  // namespace

void bindLmBuilder(nb::module_& m) {
  nb::class_<LmBuildStats>(m, "LmBuildStats", "What ds2rt.build_lm read and wrote.")
      .def_ro("sentences", &LmBuildStats::sentences)
      .def_ro("words", &LmBuildStats::words)
      .def_ro("ngrams", &LmBuildStats::ngrams, "N-grams written per order.")
      .def_ro("pruned", &LmBuildStats::pruned, "N-grams pruned per order.")
      .def_ro("prune", &LmBuildStats::prune, "Thresholds applied per order (raised by max_ngrams).")
      .def_ro("discounts", &LmBuildStats::discounts, "Per order: D1, D2, D3+.")
      .def_ro("discount_fallback", &LmBuildStats::discount_fallback, "Per order: the fallback discounts were used.")
      .def("__repr__", [](const LmBuildStats& s) {
        std::string ngrams;
        for (int64_t n : s.ngrams) ngrams += cat(ngrams.empty() ? "" : ", ", n);
        return cat("LmBuildStats(sentences=", s.sentences, ", words=", s.words, ", ngrams=[", ngrams, "])");
      });
  const LmBuildOptions d;
  const char* doc =
      "Interpolated modified Kneser-Ney, as KenLM's lmplz estimates it; each line a sentence. "
      "prune: lmplz --prune minimum counts per order (e.g. [0, 1, 1]); case: 'keep', 'lower' or 'upper' "
      "(ASCII); max_ngrams: raise the thresholds of orders 2+ until the model fits (0: no limit).";
  m.def(
      "build_lm",
      [](const std::filesystem::path& text_file, const std::filesystem::path& arpa_file, int order,
         std::optional<std::vector<int64_t>> prune, const std::string& text_case, int64_t max_ngrams,
         std::array<double, 3> discount_fallback) {
        const LmBuildOptions o = makeOptions(order, std::move(prune), text_case, max_ngrams, discount_fallback);
        nb::gil_scoped_release release;
        return buildArpa(pathString(text_file), pathString(arpa_file), o);
      },
      "text_file"_a, "arpa_file"_a, "order"_a = d.order, "prune"_a = nb::none(), "case"_a = "keep",
      "max_ngrams"_a = d.max_ngrams, "discount_fallback"_a = d.discount_fallback,
      (std::string("Builds an ARPA word LM from a text file (plain or gzip; an arpa_file ending in .gz is "
                   "compressed). ") + doc).c_str());
  m.def(
      "build_lm_text",
      [](const std::string& text, int order, std::optional<std::vector<int64_t>> prune, const std::string& text_case,
         int64_t max_ngrams, std::array<double, 3> discount_fallback) {
        const LmBuildOptions o = makeOptions(order, std::move(prune), text_case, max_ngrams, discount_fallback);
        nb::gil_scoped_release release;
        return buildArpaText(text, o);
      },
      "text"_a, "order"_a = d.order, "prune"_a = nb::none(), "case"_a = "keep", "max_ngrams"_a = d.max_ngrams,
      "discount_fallback"_a = d.discount_fallback,
      (std::string("The ARPA text of an LM built from text in memory. ") + doc).c_str());
}

void bindBundledModel(nb::module_& m) {
  nb::class_<BundledModel>(m, "BundledModel")
      .def_ro("model", &BundledModel::model)
      .def_ro("lm", &BundledModel::lm, "The LM beside the model, '' when there is none.")
      .def("__repr__", [](const BundledModel& b) { return cat("BundledModel('", b.model, "', lm='", b.lm, "')"); });
  m.attr("BUNDLED_MODEL_FILE") = kBundledModelFile;
  m.attr("BUNDLED_LM_FILE") = kBundledLmFile;
  // The repository's models/ folder as it was when the module was built (a pip install . from a checkout).
  m.attr("SOURCE_MODELS_DIR") = DS2RT_SOURCE_MODELS_DIR;
  m.def("find_bundled_model", &findBundledModel, "directories"_a,
        "$DS2RT_MODEL (a model file or a directory holding BUNDLED_MODEL_FILE) when set, else the first directory "
        "holding BUNDLED_MODEL_FILE; raises ds2rt.Error listing where it looked.");
}

}  // namespace ds2rt::python
