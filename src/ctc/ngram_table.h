// One order of an n-gram model: an open-addressing hash table keyed by word-id sequences. The
// ids live in one flat array (n per entry), so an entry costs n x 4 bytes plus 12.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ds2rt::detail {

class NGramTable {
 public:
  struct Entry {
    float prob = 0;     // log10 P(last word | the others)
    float backoff = 0;  // log10 backoff weight of the whole sequence as a context
  };

  NGramTable(int n, size_t expected_entries);

  int order() const { return n_; }
  size_t size() const { return entries_.size(); }
  // False (and no change) when the sequence is already present.
  bool insert(std::span<const uint32_t> ids, Entry entry);
  const Entry* find(std::span<const uint32_t> ids) const;

 private:
  size_t slotFor(std::span<const uint32_t> ids) const;  // its slot, or the empty one to fill
  void grow();

  int n_;
  std::vector<uint32_t> ids_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  // entry index + 1; 0 marks an empty slot
};

}  // namespace ds2rt::detail
