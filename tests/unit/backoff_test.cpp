#include "health/backoff.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <set>

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::Backoff;
using pgwd::Nanos;

namespace {

struct FixedRandom final : pgwd::Random {
  std::uint64_t value;
  explicit FixedRandom(std::uint64_t v) : value(v) {}
  std::uint64_t next() override { return value; }
};

}  // namespace

TEST_CASE("backoff: the ceiling doubles from initial and stops at max") {
  FixedRandom highest(std::numeric_limits<std::uint64_t>::max());
  Backoff backoff(100ms, 1s, highest);
  // Whatever the draw, each delay stays within [ceiling/2, ceiling] of its attempt.
  Nanos ceiling = 100ms;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const Nanos delay = backoff.next();
    CHECK(delay >= ceiling / 2);
    CHECK(delay <= ceiling);
    ceiling = std::min<Nanos>(ceiling * 2, 1s);
  }
  CHECK(backoff.ceiling() == Nanos(1s));
}

TEST_CASE("backoff: smallest and largest draws are exactly half the ceiling and the ceiling") {
  FixedRandom lowest(0);
  Backoff low(100ms, 800ms, lowest);
  CHECK(low.next() == Nanos(50ms));
  CHECK(low.next() == Nanos(100ms));
  CHECK(low.next() == Nanos(200ms));
  CHECK(low.next() == Nanos(400ms));
  CHECK(low.next() == Nanos(400ms));  // capped at 800ms

  // A ceiling c spans c/2+1 values, so the draw c/2 lands exactly on the ceiling.
  struct Top final : pgwd::Random {
    Nanos ceiling = 100ms;
    std::uint64_t next() override {
      const auto v = static_cast<std::uint64_t>((ceiling / 2).count());
      ceiling = std::min<Nanos>(ceiling * 2, 800ms);
      return v;
    }
  } top;
  Backoff high(100ms, 800ms, top);
  CHECK(high.next() == Nanos(100ms));
  CHECK(high.next() == Nanos(200ms));
  CHECK(high.next() == Nanos(400ms));
  CHECK(high.next() == Nanos(800ms));
  CHECK(high.next() == Nanos(800ms));
}

TEST_CASE("backoff: reset starts again from initial") {
  FixedRandom lowest(0);
  Backoff backoff(100ms, 30s, lowest);
  for (int i = 0; i < 5; ++i) backoff.next();
  backoff.reset();
  CHECK(backoff.next() == Nanos(50ms));
}

TEST_CASE("backoff: jitter spreads delays over the whole [ceiling/2 - ceiling] range") {
  pgwd::SystemRandom random;
  std::set<Nanos::rep> seen;
  Nanos lowest = Nanos::max();
  Nanos highest = Nanos::min();
  for (int i = 0; i < 2000; ++i) {
    Backoff backoff(1s, 1s, random);  // constant ceiling: every draw is in [500ms, 1s]
    const Nanos d = backoff.next();
    REQUIRE(d >= Nanos(500ms));
    REQUIRE(d <= Nanos(1s));
    seen.insert(d.count());
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  CHECK(seen.size() > 1900);     // practically all distinct
  CHECK(lowest < Nanos(520ms));  // reaches both ends of the range
  CHECK(highest > Nanos(980ms));
}

TEST_CASE("backoff: max below initial is treated as initial") {
  FixedRandom lowest(0);
  Backoff backoff(200ms, 100ms, lowest);
  CHECK(backoff.next() == Nanos(100ms));
  CHECK(backoff.next() == Nanos(100ms));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
