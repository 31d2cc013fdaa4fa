#include "health/backoff.hpp"

#include <algorithm>

namespace pgwd {

Backoff::Backoff(Nanos initial, Nanos max, Random& random)
    : initial_(std::max(initial, Nanos(1))),
      max_(std::max(max, initial_)),
      ceiling_(initial_),
      random_(random) {}

Nanos Backoff::next() {
  const auto high = ceiling_.count();
  const auto low = high / 2;
  const auto span = static_cast<std::uint64_t>(high - low) + 1;
  const Nanos delay(low + static_cast<Nanos::rep>(random_.next() % span));
  ceiling_ = ceiling_ >= max_ / 2 ? max_ : ceiling_ * 2;
  return delay;
}

}  // namespace pgwd
