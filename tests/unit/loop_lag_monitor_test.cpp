#include "event/loop_lag_monitor.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "support/fake_time.hpp"

using namespace std::chrono_literals;
using pgwd::LoopLagMonitor;
using pgwd::Nanos;

TEST_CASE("loop lag: a punctual loop reports zero lag - a stalled one reports how late it was") {
  pgwd::testing::FakeScheduler scheduler;
  std::vector<Nanos> lags;
  LoopLagMonitor monitor(scheduler, 100ms, [&](Nanos lag) { lags.push_back(lag); });
  scheduler.advance(300ms);
  CHECK(lags == std::vector<Nanos>{0ms, 0ms, 0ms});
  scheduler.stall(250ms);  // a callback blocked the loop past the next due time (400ms)
  scheduler.advance(0ms);
  REQUIRE(lags.size() == 4);
  CHECK(lags[3] == Nanos(150ms));
  // Re-armed from the late tick: no burst of catch-up ticks.
  scheduler.advance(99ms);
  CHECK(lags.size() == 4);
  scheduler.advance(1ms);
  CHECK(lags.size() == 5);
  CHECK(lags[4] == Nanos(0ms));
}
