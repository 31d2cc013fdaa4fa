// Watchdog::remove_targets in bounded steps: what callers see happens at once, the closing of
// connections goes on over later loop passes, a bounded step each. On a fake loop whose clock
// moves by a fixed amount each time it is read, so that closing a target "costs" time without
// anything real taking long; no speed is asserted, only the splitting. The targets name a host
// that only the fake resolver knows of, and it never answers: nothing connects.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"
#include "support/offline_targets.hpp"
#include "support/ticking_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::FakeLoop;
using pgwd::testing::metric_value;
using pgwd::testing::silent_logger;
using pgwd::testing::TickingLoop;
using pgwd::testing::unresolved_target;

namespace {

std::vector<std::string> names(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("t" + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("remove_targets: gone at once for callers, connections closed a bounded step a pass") {
  FakeLoop fake;
  TickingLoop loop(fake, 1ms);  // a retire reads the clock at least once: at most 3 a 2.5 ms step
  auto metrics = pgwd::make_series_store();
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
  for (const std::string& name : names(40)) w.add_target(unresolved_target(name));
  fake.advance(0ns);  // as many resolving as max_concurrent_connects lets, the others waiting
  CHECK(fake.pending_lookups().size() == 16);

  CHECK(w.remove_targets(names(40)) == 40);
  // What callers see: at once.
  CHECK(w.target_names().empty());
  CHECK(w.connection_states("t0").empty());
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "t0"}}) == -1);
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "t39"}}) == -1);
  // What costs: a first step now, the rest later.
  const std::size_t closing = w.targets_closing();
  CHECK(closing > 0);
  CHECK(closing < 40);
  // The names are free again at once (a reload's restart: remove, then add).
  w.add_target(unresolved_target("t0"));
  CHECK(w.target_names() == std::vector<std::string>{"t0"});

  std::vector<std::size_t> after_each_pass;
  loop.after_timer = [&] { after_each_pass.push_back(w.targets_closing()); };
  fake.advance(0ns);
  loop.after_timer = nullptr;
  CHECK(w.targets_closing() == 0);
  REQUIRE(after_each_pass.size() >= 2);
  std::size_t before = closing;
  for (const std::size_t left : after_each_pass) {
    CHECK(left <= before);
    CHECK(before - left <= 3);  // never more than the step allows in one pass
    before = left;
  }
  // Every removed connection closed (its lookup cancelled); the target added meanwhile stays.
  CHECK(fake.pending_lookups().size() <= 1);
  CHECK(w.target_names() == std::vector<std::string>{"t0"});
  CHECK(w.connection_states("t0").size() == 1);
}

TEST_CASE("remove_targets: what fits in one step closes before it returns") {
  FakeLoop fake;  // the clock stands still: every close fits
  pgwd::Watchdog w(fake, pgwd::WatchdogOptions{.logger = silent_logger()});
  for (const std::string& name : names(100)) w.add_target(unresolved_target(name));
  fake.advance(0ns);
  REQUIRE(fake.pending_lookups().size() == 16);  // t0 to t15, admitted first
  CHECK(w.remove_targets(names(60)) == 60);
  CHECK(w.targets_closing() == 0);
  CHECK(fake.pending_lookups().empty());  // all closed, their lookups cancelled
  CHECK(w.target_names().size() == 40);
}

TEST_CASE("remove_targets: destroying the watchdog with targets still closing closes them") {
  FakeLoop fake;
  TickingLoop loop(fake, 1ms);
  {
    pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.logger = silent_logger()});
    for (const std::string& name : names(30)) w.add_target(unresolved_target(name));
    fake.advance(0ns);
    w.remove_targets(names(30));
    CHECK(w.targets_closing() > 0);
  }
  CHECK(fake.pending_lookups().empty());
  CHECK(fake.armed_timers() == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
