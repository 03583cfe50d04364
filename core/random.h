// The one pseudo-random generator of the generators: SplitMix64 (Steele, Lea and Flood 2014),
// small, fast and the same on every platform, so that a description and its `seed=` give the same
// bytes everywhere. Not for cryptography: generated "encrypted" bytes only need to look random.
//
// Threads: a plain value; each user owns its own.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vei {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (n > 0); the bias of a 64-bit modulo is far below what any test could see.
  uint64_t below(uint64_t n) { return next() % n; }
  // Each draw gives 8 bytes, least significant first on every platform; a little-endian host
  // copies whole words (generators fill ciphertext by the megabyte).
  void fill(std::byte* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = next();
      if constexpr (std::endian::native == std::endian::little)
        std::memcpy(p + i, &v, 8);
      else
        for (size_t k = 0; k < 8; ++k) p[i + k] = std::byte(v >> (8 * k));
    }
    if (i == n) return;
    const uint64_t v = next();
    for (size_t k = 0; i + k < n; ++k) p[i + k] = std::byte(v >> (8 * k));
  }

 private:
  uint64_t state_;
};

// A seed for the i-th part of something seeded with `seed`: independent streams per repetition.
inline uint64_t mix_seed(uint64_t seed, uint64_t i) { return Rng(seed ^ (i * 0xd1342543de82ef95)).next(); }

}  // namespace vei
