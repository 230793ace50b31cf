// A small random number generator whose draws are bit-identical on every platform, for the label
// statistics (label_stats.h): bootstrap resamples and permutations must be reproducible from
// [stats] seed alone, whatever the compiler, standard library or number of threads.
//
// Definition (everything is uint64 arithmetic modulo 2^64):
//  - Mix64(z): the SplitMix64 finaliser
//      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//      return z ^ (z >> 31).
//  - SplitMix64 with state s: s += 0x9E3779B97F4A7C15; return Mix64(s).
//  - Stream (seed, domain, index): a xoshiro256** generator whose four state words are the first
//    four outputs of SplitMix64 started at s = Mix64(seed) ^ Mix64((domain << 40) + index)
//    (an all-zero state, which cannot occur in practice, is replaced by SplitMix64's next outputs).
//    Each bootstrap resample b uses stream (seed, kBootstrapDomain, b), each permutation p stream
//    (seed, kPermutationDomain, p), so a resample's draws do not depend on which thread runs it.
//  - xoshiro256** (Blackman & Vigna 2018): result = rotl(s1 * 5, 7) * 9; t = s1 << 17;
//    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45).
//  - Below(n), uniform in [0, n) for n >= 1 (Lemire's multiply-shift with rejection, exact): draw
//    x, m = x * n as a 128-bit product; while (low 64 bits of m) < (2^64 - n) mod n, draw again;
//    return the high 64 bits of m.
//  - Shuffle (Fisher-Yates, descending): for i = n-1 down to 1: j = Below(i+1); swap(a[i], a[j]).
// Not std::uniform_int_distribution / std::shuffle: their algorithms differ between libraries.
//
// Thread-safety: a Rng is a value; use one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace nd {

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline constexpr uint64_t kBootstrapDomain = 1;
inline constexpr uint64_t kPermutationDomain = 2;

class Rng {
 public:
  // The stream (seed, domain, index) of the header comment.
  Rng(uint64_t seed, uint64_t domain, uint64_t index) {
    uint64_t sm = Mix64(seed) ^ Mix64((domain << 40) + index);
    auto next = [&sm] {
      sm += 0x9E3779B97F4A7C15ULL;
      return Mix64(sm);
    };
    do {
      for (uint64_t& w : s_) w = next();
    } while ((s_[0] | s_[1] | s_[2] | s_[3]) == 0);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n). REQUIRES: n >= 1.
  uint64_t Below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t t = (0 - n) % n;  // (2^64 - n) mod n
      while (low < t) {
        m = static_cast<unsigned __int128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Fisher-Yates as in the header comment.
  template <typename T>
  void Shuffle(std::vector<T>* a) {
    for (size_t i = a->size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(Below(i));
      std::swap((*a)[i - 1], (*a)[j]);
    }
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace nd
