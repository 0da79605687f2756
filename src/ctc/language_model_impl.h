// The tables behind ds2rt::LanguageModel, shared by the ARPA reader and the scorer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ctc/ngram_table.h"
#include "ds2rt/decoder.h"

namespace ds2rt::detail {

struct LanguageModelData {
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::string name;  // the file, for messages
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> vocabulary;  // word -> id
  std::vector<std::string> sorted_words;  // vocabulary without <s>, </s>, <unk>, sorted (prefix tests)
  std::vector<detail::NGramTable> tables;  // tables[n - 1] holds the n-grams
  uint32_t unk = 0, bos = 0, eos = 0;

  int order() const { return static_cast<int>(tables.size()); }
  uint32_t id(std::string_view word) const {
    auto it = vocabulary.find(word);
    return it == vocabulary.end() ? unk : it->second;
  }
};

std::shared_ptr<LanguageModelData> readArpa(std::string_view text, const std::string& name);

}  // namespace ds2rt::detail
