#pragma once

#include <cstdint>
#include <random>

namespace pgwd {

/// Source of randomness for jitter, injected so unit tests can script it.
class Random {
 public:
  virtual ~Random() = default;
  virtual std::uint64_t next() = 0;
};

class SystemRandom final : public Random {
 public:
  std::uint64_t next() override { return engine_(); }

 private:
  std::mt19937_64 engine_{std::random_device{}()};
};

}  // namespace pgwd
