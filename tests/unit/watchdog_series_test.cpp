// A Watchdog's series in the store: they go with their target and their watchdog, in time
// linear in what goes, and never touch another watchdog's. On a fake loop that is never
// advanced, so nothing connects.
#include <doctest/doctest.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pgwd/prometheus_collectable.hpp"
#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"
#include "support/offline_targets.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::metric_value;

using pgwd::testing::offline_target;
using pgwd::testing::silent_logger;

namespace {

std::size_t series_in(const std::shared_ptr<pgwd::SeriesStore>& store, const std::string& family) {
  for (const auto& f : pgwd::prometheus_collectable(store)->Collect())
    if (f.name == family) return f.metric.size();
  return 0;
}

}  // namespace

TEST_CASE("watchdog: going away removes its targets' series and leaves another watchdog's") {
  pgwd::testing::FakeLoop loop;
  auto metrics = pgwd::make_series_store();
  pgwd::Watchdog stays(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
  stays.add_target(offline_target("kept"));
  {
    pgwd::Watchdog goes(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
    for (int i = 0; i < 3000; ++i) goes.add_target(offline_target("t" + std::to_string(i)));
    CHECK(series_in(metrics, "pgwatchdog_up") == 3001);
  }
  CHECK(series_in(metrics, "pgwatchdog_up") == 1);
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "kept"}}) == 0);
  CHECK(metric_value(metrics, "pgwatchdog_connections", {{"target", "t7"}, {"state", "waiting"}}) ==
        -1);
  CHECK(metric_value(metrics, "pgwatchdog_event_loop_lag_seconds_count",
                     {{"loop", "watchdog-2"}}) == -1);
}

TEST_CASE("watchdog: remove_targets removes those named and leaves every other series as it was") {
  pgwd::testing::FakeLoop loop;
  auto metrics = pgwd::make_series_store();
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
  pgwd::Watchdog other(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
  other.add_target(offline_target("other"));
  std::vector<std::string> half;
  for (int i = 0; i < 2000; ++i) {
    w.add_target(offline_target("t" + std::to_string(i)));
    if (i % 2 == 0) half.push_back("t" + std::to_string(i));
  }
  half.push_back("unknown");  // skipped
  const auto staying_lines = [&] {
    std::string lines;
    std::istringstream text(metrics->text());
    for (std::string line; std::getline(text, line);)
      if (line.find("target=\"t1\"") != std::string::npos ||
          line.find("target=\"other\"") != std::string::npos)
        lines += line + "\n";
    return lines;
  };
  const std::string before = staying_lines();
  CHECK(w.remove_targets(half) == 1000);
  CHECK(series_in(metrics, "pgwatchdog_up") == 1001);
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "t0"}}) == -1);
  CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", "t1999"}}) == 0);
  CHECK(staying_lines() == before);
}

TEST_CASE("watchdog: one going away while another joins the same store on another thread" *
          doctest::test_suite("thread")) {
  // Each thread has its own loop; both use one store, over and over. Whatever the
  // interleaving, a watchdog never loses its own series to the other's going away.
  auto metrics = pgwd::make_series_store();
  auto churn = [&](const std::string& prefix) {
    pgwd::testing::FakeLoop loop;
    for (int round = 0; round < 40; ++round) {
      pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
      for (int i = 0; i < 20; ++i) w.add_target(offline_target(prefix + std::to_string(i)));
      for (int i = 0; i < 20; ++i)
        CHECK(metric_value(metrics, "pgwatchdog_up", {{"target", prefix + std::to_string(i)}}) ==
              0);
    }
  };
  std::thread other([&] { churn("b"); });
  churn("a");
  other.join();
  // Nothing left but the store's own build_info.
  CHECK(pgwd::prometheus_collectable(metrics)->Collect().size() == 1);
}

TEST_CASE("watchdog: with per-target histograms off its targets share one of each by loop") {
  pgwd::testing::FakeLoop loop;
  auto metrics = pgwd::make_series_store();
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.metrics = metrics,
                                               .logger = silent_logger(),
                                               .name = "fleet",
                                               .per_target_histograms = false});
  for (const char* name : {"a", "b", "c"}) w.add_target(offline_target(name));
  for (const char* family : {"pgwatchdog_probe_duration_seconds", "pgwatchdog_outage_seconds"}) {
    CAPTURE(family);
    CHECK(series_in(metrics, family) == 1);
    CHECK(metric_value(metrics, std::string(family) + "_count", {{"loop", "fleet"}}) == 0);
    CHECK(metric_value(metrics, std::string(family) + "_count", {{"target", "a"}}) == -1);
  }
  CHECK(series_in(metrics, "pgwatchdog_up") == 3);  // the rest stays per target
  CHECK(w.remove_target("a"));
  CHECK(series_in(metrics, "pgwatchdog_outage_seconds") == 1);  // not a's to remove
  {
    pgwd::Watchdog other(loop,
                         pgwd::WatchdogOptions{.metrics = metrics, .logger = silent_logger()});
    other.add_target(offline_target("d"));
    CHECK(series_in(metrics, "pgwatchdog_outage_seconds") == 2);
  }
  CHECK(series_in(metrics, "pgwatchdog_outage_seconds") == 1);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
