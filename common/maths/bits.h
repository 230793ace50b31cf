// Bit-packed pixel sets of the score stage.
//
// A pixel set over an sh×sw grid is a row-major bit string, pixel p = y*sw + x at bit (p % 64) of
// word p / 64 (uint64), packed contiguously across rows (rows are not padded to words). Bits past
// sh*sw in the last word are always 0. Helpers here are pure functions; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nd {

inline size_t WordsForBits(int64_t bits) { return static_cast<size_t>((bits + 63) / 64); }

inline int Popcount64(uint64_t w) { return __builtin_popcountll(w); }

// Sets bits [begin, end) of `words`. REQUIRES: 0 <= begin <= end, the words exist.
inline void SetBitRange(uint64_t* words, int64_t begin, int64_t end) {
  if (begin >= end) return;
  const int64_t wb = begin >> 6, we = (end - 1) >> 6;
  const uint64_t first = ~uint64_t{0} << (begin & 63);
  const uint64_t last = ~uint64_t{0} >> (63 - ((end - 1) & 63));
  if (wb == we) {
    words[wb] |= first & last;
    return;
  }
  words[wb] |= first;
  for (int64_t i = wb + 1; i < we; ++i) words[i] = ~uint64_t{0};
  words[we] |= last;
}

// popcount(a[i] & b[i]) summed over i in [lo, hi).
inline int64_t AndPopcount(const uint64_t* a, const uint64_t* b, size_t lo, size_t hi) {
  int64_t n = 0;
  for (size_t i = lo; i < hi; ++i) n += Popcount64(a[i] & b[i]);
  return n;
}

// True when a[i] & b[i] != 0 for some i in [lo, hi).
inline bool AndAny(const uint64_t* a, const uint64_t* b, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) {
    if (a[i] & b[i]) return true;
  }
  return false;
}

}  // namespace nd
