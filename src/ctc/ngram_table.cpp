#include "ctc/ngram_table.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ds2rt::detail {
namespace {

uint64_t hashIds(std::span<const uint32_t> ids) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (uint32_t id : ids) {
    h ^= id + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h;
}

size_t capacityFor(size_t entries) { return std::bit_ceil(std::max<size_t>(16, entries * 2)); }

}  // namespace

NGramTable::NGramTable(int n, size_t expected_entries) : n_(n), slots_(capacityFor(expected_entries), 0) {
  ids_.reserve(expected_entries * static_cast<size_t>(n));
  entries_.reserve(expected_entries);
}

size_t NGramTable::slotFor(std::span<const uint32_t> ids) const {
  const size_t mask = slots_.size() - 1;
  for (size_t slot = hashIds(ids) & mask;; slot = (slot + 1) & mask) {
    const uint32_t e = slots_[slot];
    if (e == 0) return slot;
    if (std::memcmp(&ids_[(e - 1) * static_cast<size_t>(n_)], ids.data(), ids.size_bytes()) == 0) return slot;
  }
}

bool NGramTable::insert(std::span<const uint32_t> ids, Entry entry) {
  if ((entries_.size() + 1) * 2 > slots_.size()) grow();
  const size_t slot = slotFor(ids);
  if (slots_[slot] != 0) return false;
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  entries_.push_back(entry);
  slots_[slot] = static_cast<uint32_t>(entries_.size());
  return true;
}

const NGramTable::Entry* NGramTable::find(std::span<const uint32_t> ids) const {
  if (static_cast<int>(ids.size()) != n_) return nullptr;
  const uint32_t e = slots_[slotFor(ids)];
  return e == 0 ? nullptr : &entries_[e - 1];
}

void NGramTable::grow() {
  std::vector<uint32_t> old(capacityFor(entries_.size() + 1) * 2, 0);
  old.swap(slots_);
  const size_t n = static_cast<size_t>(n_);
  for (size_t e = 0; e < entries_.size(); ++e) slots_[slotFor({&ids_[e * n], n})] = static_cast<uint32_t>(e + 1);
}

}  // namespace ds2rt::detail
