// Hotword boosts as pyctcdecode's HotwordScorer applies them, with a boost per word instead of
// one weight for all: completed words add their boost; a partial word that starts a hotword adds
// boost x len(partial) / len(hotword) for the shortest hotword it starts.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ds2rt/decoder.h"

namespace ds2rt::detail {

class HotwordScorer {
 public:
  explicit HotwordScorer(const std::vector<Hotword>& hotwords);

  bool empty() const { return by_length_.empty(); }
  double wordBoost(std::string_view word) const;
  bool startsHotword(std::string_view partial) const;  // pygtrie's has_node: a prefix or the word
  double partialBoost(std::string_view partial) const;  // 0 unless startsHotword

 private:
  const std::string* shortestStartingWith(std::string_view partial) const;

  std::unordered_map<std::string, double> boosts_;  // a word given twice keeps its last boost
  std::vector<std::string> by_length_;              // shortest first; equal lengths in given order
};

}  // namespace ds2rt::detail
