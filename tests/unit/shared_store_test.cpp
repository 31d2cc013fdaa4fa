// Several watchdogs on one series store (a thread per core, the daemon and an embedded one): one
// owner per target name, the loop's series per watchdog. On a fake loop that is never advanced,
// so nothing connects.
#include <doctest/doctest.h>

#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"
#include "support/offline_targets.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;
using pgwd::testing::FakeLoop;
using pgwd::testing::metric_value;
using pgwd::testing::offline_target;

TEST_CASE("store: two watchdogs share one store without touching each other's series") {
  FakeLoop loop;
  auto metrics = make_series_store();
  Watchdog first(loop, WatchdogOptions{.metrics = metrics});
  Watchdog second(loop, WatchdogOptions{.metrics = metrics});
  CHECK(first.name() == "watchdog");
  CHECK(second.name() == "watchdog-2");

  first.add_target(offline_target("a"));
  CHECK_THROWS_WITH_AS(second.add_target(offline_target("a")),
                       "target 'a': another Watchdog on the same metrics store watches a "
                       "target with this name",
                       InvalidTarget);
  second.add_target(offline_target("b"));
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "a"}}) == 0);
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "b"}}) == 0);

  CHECK(second.remove_target("b"));
  CHECK_FALSE(second.remove_target("a"));                                 // not second's to remove
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "a"}}) == 0);  // still there
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "b"}}) == -1);
  second.add_target(offline_target("b"));  // the name is free again

  // Each watchdog's loop has its own series.
  for (const char* loop_name : {"watchdog", "watchdog-2"}) {
    CAPTURE(loop_name);
    CHECK(metric_value(metrics, "pgwatchdog_event_loop_lag_seconds_count", {{"loop", loop_name}}) ==
          0);
    CHECK(metric_value(metrics, "pgwatchdog_slow_callbacks_total",
                       {{"loop", loop_name}, {"phase", "connect_poll"}}) == 0);
  }
}

TEST_CASE("store: a target name is released when its watchdog goes") {
  FakeLoop loop;
  auto metrics = make_series_store();
  {
    Watchdog first(loop, WatchdogOptions{.metrics = metrics, .name = "one"});
    first.add_target(offline_target("a"));
    CHECK_THROWS_WITH_AS(Watchdog(loop, WatchdogOptions{.metrics = metrics, .name = "one"}),
                         "name: another Watchdog on the same metrics store is already named 'one'",
                         InvalidOptions);
  }
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "a"}}) == -1);
  CHECK(metric_value(metrics, "pgwatchdog_event_loop_lag_seconds_count", {{"loop", "one"}}) == -1);
  Watchdog again(loop, WatchdogOptions{.metrics = metrics, .name = "one"});
  again.add_target(offline_target("a"));
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "a"}}) == 0);
}

TEST_CASE("options: bad WatchdogOptions throw from the constructor, naming the option") {
  FakeLoop loop;
  CHECK_THROWS_WITH_AS(Watchdog(loop, WatchdogOptions{.max_concurrent_connects = 0}),
                       "max_concurrent_connects must be at least 1", InvalidOptions);
  CHECK_THROWS_WITH_AS(
      Watchdog(loop, WatchdogOptions{.loop_lag_interval = std::chrono::milliseconds(-1)}),
      "loop_lag_interval must not be negative", InvalidOptions);
  CHECK_THROWS_WITH_AS(
      Watchdog(loop, WatchdogOptions{.slow_callback_threshold = std::chrono::milliseconds(-1)}),
      "slow_callback_threshold must not be negative", InvalidOptions);
  CHECK_THROWS_AS(Watchdog(loop, WatchdogOptions{.nameservers = {""}}), InvalidOptions);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
