// A target's way back after an outage, on the fake loop: one scout attempt per period while its
// connections wait out their backoff, and every sibling back at once when one connection is.
#include "health/recovery_scout.hpp"

#include <doctest/doctest.h>

#include <utility>
#include <vector>

#include "support/fake_loop.hpp"
#include "support/scripted_link.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;
using pgwd::testing::LowestRandom;
using S = pgwd::ConnectionState;

namespace {

struct HighestRandom final : Random {
  std::uint64_t next() override { return ~std::uint64_t{0}; }
};

struct Fixture {
  FakeLoop loop;
  LowestRandom random;
  std::vector<S> states{S::backoff, S::backoff, S::backoff};
  std::vector<bool> lasting{false, false, false};
  std::vector<std::pair<std::size_t, Nanos>> retries;

  RecoveryScout::Hooks hooks() {
    return {.state = [this](std::size_t i) { return states[i]; },
            .lasting = [this](std::size_t i) { return static_cast<bool>(lasting[i]); },
            .retry_within = [this](std::size_t i, Nanos d) { retries.emplace_back(i, d); }};
  }
};

using Retries = std::vector<std::pair<std::size_t, Nanos>>;

}  // namespace

TEST_CASE_FIXTURE(Fixture,
                  "recovery scout: one connection tries at once every period - one attempt at a "
                  "time, in turn") {
  RecoveryScout scout(loop, random, 500ms, 100ms, 3, hooks());
  scout.lost();
  scout.lost();  // a second loss does not restart the count
  loop.advance(500ms - 1ns);
  CHECK(retries.empty());
  loop.advance(1ns);
  CHECK(retries == Retries{{0, 0ns}});
  states[0] = S::connecting;  // the scout's attempt is on its way
  loop.advance(500ms);
  CHECK(retries.size() == 1);  // still one attempt at a time
  states[0] = S::backoff;      // refused again
  loop.advance(500ms);
  CHECK(retries == Retries{{0, 0ns}, {1, 0ns}});
  states[1] = S::backoff;
  loop.advance(500ms);
  CHECK(retries == Retries{{0, 0ns}, {1, 0ns}, {2, 0ns}});
}

TEST_CASE_FIXTURE(Fixture,
                  "recovery scout: once a connection is back the siblings still waiting retry "
                  "within the spread") {
  HighestRandom highest;
  RecoveryScout scout(loop, highest, 500ms, 100ms, 4, hooks());
  states = {S::healthy, S::backoff, S::connecting, S::backoff};
  lasting = {false, false, false, false};
  scout.back();
  // ~0 % 100000001 ns: each delay is drawn from [0, spread].
  const Nanos drawn(static_cast<Nanos::rep>(~std::uint64_t{0} % 100'000'001ULL));
  CHECK(drawn <= 100ms);
  CHECK(retries == Retries{{1, drawn}, {3, drawn}});
}

TEST_CASE_FIXTURE(Fixture,
                  "recovery scout: a failure that will not fix itself is neither scouted nor "
                  "hurried") {
  lasting = {true, true, false};
  RecoveryScout scout(loop, random, 500ms, 100ms, 3, hooks());
  scout.lost();
  loop.advance(500ms);
  CHECK(retries == Retries{{2, 0ns}});
  states[2] = S::healthy;
  loop.advance(500ms);  // only lasting failures wait: scouting ends
  CHECK(retries.size() == 1);
  CHECK(loop.armed_timers() == 0);
  scout.back();
  CHECK(retries.size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "recovery scout: scouting ends when nobody waits - a loss starts it") {
  RecoveryScout scout(loop, random, 500ms, 100ms, 3, hooks());
  states = {S::healthy, S::healthy, S::healthy};
  scout.lost();
  loop.advance(500ms);
  CHECK(retries.empty());
  CHECK(loop.armed_timers() == 0);
  loop.advance(1h);
  states[1] = S::backoff;
  scout.lost();
  loop.advance(500ms);
  CHECK(retries == Retries{{1, 0ns}});
}

TEST_CASE_FIXTURE(Fixture, "recovery scout: period zero does nothing at all") {
  RecoveryScout scout(loop, random, 0s, 0s, 3, hooks());
  scout.lost();
  scout.back();
  CHECK(loop.armed_timers() == 0);
  loop.advance(1h);
  CHECK(retries.empty());
}

TEST_CASE_FIXTURE(Fixture, "recovery scout: stop() cancels the next turn") {
  RecoveryScout scout(loop, random, 500ms, 100ms, 3, hooks());
  scout.lost();
  scout.stop();
  loop.advance(1h);
  CHECK(retries.empty());
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
