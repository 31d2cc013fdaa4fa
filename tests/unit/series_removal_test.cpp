// Removing many metric series at once (SeriesSweep, TargetMetrics::remove_together, a Watchdog
// going away): every series given goes, nothing else does, and each is found where the family's
// own search starts (no scan of the family per series: that made SIGTERM with 10,000 targets
// take 71.5 s). The counts are asserted, not the time.
#include <doctest/doctest.h>
#include <prometheus/registry.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metric_families.hpp"
#include "metrics/series_sweep.hpp"
#include "metrics/target_metrics.hpp"
#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"

using pgwd::testing::metric_value;

namespace {

std::size_t series_in(const prometheus::Registry& registry, const std::string& family) {
  for (const auto& f : registry.Collect())
    if (f.name == family) return f.metric.size();
  return 0;
}

std::shared_ptr<spdlog::logger> silent() {
  return std::make_shared<spdlog::logger>("silent",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

TEST_CASE("series sweep: removes exactly the series given, each found in iteration order") {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("sweep_test_total").Help("h").Register(registry);
  std::vector<prometheus::Counter*> series;
  for (int i = 0; i < 5000; ++i)
    series.push_back(&family.Add({{"target", "t" + std::to_string(i)}, {"kind", "a"}}));
  pgwd::SeriesSweep sweep(family);
  std::size_t given = 0;
  for (int i = 0; i < 5000; i += 2) {  // every other one
    const std::string name = "t" + std::to_string(i);
    sweep.add({{"kind", "a"}, {"target", name}}, series[static_cast<std::size_t>(i)]);
    ++given;
  }
  CHECK(sweep.run().in_order == given);
  CHECK(series_in(registry, "sweep_test_total") == 5000 - given);
  CHECK(metric_value(registry, "sweep_test_total", {{"target", "t0"}, {"kind", "a"}}) == -1);
  CHECK(metric_value(registry, "sweep_test_total", {{"target", "t1"}, {"kind", "a"}}) == 0);
  CHECK(metric_value(registry, "sweep_test_total", {{"target", "t4999"}, {"kind", "a"}}) == 0);
}

TEST_CASE("series sweep: a series added after the sweep read the family is removed too") {
  prometheus::Registry registry;
  auto& family = prometheus::BuildGauge().Name("sweep_test").Help("h").Register(registry);
  auto& early = family.Add({{"target", "early"}});
  pgwd::SeriesSweep sweep(family);
  sweep.add({{"target", "early"}}, &early);
  // Not in the family at all when the sweep runs its Collect(): removed by a full search.
  auto& unknown_to_family = family.Add({{"target", "late"}});
  family.Remove(&unknown_to_family);
  auto& late = family.Add({{"target", "late"}});
  sweep.add({{"target", "late"}}, &late);
  CHECK(sweep.run().in_order == 2);
  CHECK(series_in(registry, "sweep_test") == 0);
}

TEST_CASE("target metrics: removed together, every series of every target is found in order") {
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::MetricFamilies families(*registry);
  const std::size_t series_before = registry->Collect().size();
  std::vector<std::unique_ptr<pgwd::TargetMetrics>> targets;
  for (int i = 0; i < 2000; ++i)
    targets.push_back(std::make_unique<pgwd::TargetMetrics>(families, "t" + std::to_string(i)));
  auto count_series = [&] {
    std::size_t n = 0;
    for (const auto& f : registry->Collect())
      if (f.name != "pgwatchdog_build_info") n += f.metric.size();
    return n;
  };
  const std::size_t all = count_series();
  REQUIRE(all > 2000 * 20);
  // One survivor keeps its series: the sweep removes only what it is given.
  std::vector<pgwd::TargetMetrics*> doomed;
  for (std::size_t i = 1; i < targets.size(); ++i) doomed.push_back(targets[i].get());
  const std::size_t per_target = all / targets.size();
  CHECK(pgwd::TargetMetrics::remove_together(doomed).in_order == per_target * doomed.size());
  CHECK(count_series() == per_target);
  CHECK(metric_value(*registry, "pgwatchdog_up", {{"target", "t0"}}) == 0);
  CHECK(metric_value(*registry, "pgwatchdog_up", {{"target", "t1"}}) == -1);
  targets.clear();  // the removed ones remove nothing more; t0 removes its own
  CHECK(count_series() == 0);
  CHECK(registry->Collect().size() == series_before);
}

TEST_CASE("watchdog: going away removes its targets' series and leaves another watchdog's") {
  pgwd::testing::FakeLoop loop;
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::Watchdog stays(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
  pgwd::TargetOptions kept;
  kept.name = "kept";
  kept.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  stays.add_target(kept);
  {
    pgwd::Watchdog goes(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
    for (int i = 0; i < 3000; ++i) {
      pgwd::TargetOptions o = kept;
      o.name = "t" + std::to_string(i);
      goes.add_target(o);
    }
    CHECK(series_in(*registry, "pgwatchdog_up") == 3001);
  }
  CHECK(series_in(*registry, "pgwatchdog_up") == 1);
  CHECK(metric_value(*registry, "pgwatchdog_up", {{"target", "kept"}}) == 0);
  CHECK(metric_value(*registry, "pgwatchdog_connections",
                     {{"target", "t7"}, {"state", "waiting"}}) == -1);
}

TEST_CASE("watchdog: alone on its registry, going away drops the families whole") {
  pgwd::testing::FakeLoop loop;
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::TargetOptions o;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  {
    pgwd::Watchdog alone(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
    for (int i = 0; i < 3000; ++i) {
      o.name = "t" + std::to_string(i);
      alone.add_target(o);
    }
    CHECK(series_in(*registry, "pgwatchdog_up") == 3000);
  }
  // Not one family left, not even an empty one: nothing was removed series by series.
  CHECK(registry->Collect().empty());
  // The registry is as good as new for the next watchdog.
  pgwd::Watchdog next(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
  o.name = "t1";
  next.add_target(o);
  CHECK(series_in(*registry, "pgwatchdog_up") == 1);
  CHECK(metric_value(*registry, "pgwatchdog_connections",
                     {{"target", "t1"}, {"state", "waiting"}}) == 1);
  CHECK(series_in(*registry, "pgwatchdog_build_info") == 1);
}

TEST_CASE("watchdog: one going away while another joins the same registry on another thread" *
          doctest::test_suite("thread")) {
  // Each thread has its own loop; both use one registry, over and over. Whatever the
  // interleaving, a watchdog never loses its own series to the other's going away.
  auto registry = std::make_shared<prometheus::Registry>();
  auto churn = [&](const std::string& prefix) {
    pgwd::testing::FakeLoop loop;
    for (int round = 0; round < 40; ++round) {
      pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
      pgwd::TargetOptions o;
      o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
      for (int i = 0; i < 20; ++i) {
        o.name = prefix + std::to_string(i);
        w.add_target(o);
      }
      for (int i = 0; i < 20; ++i)
        CHECK(metric_value(*registry, "pgwatchdog_up", {{"target", prefix + std::to_string(i)}}) ==
              0);
    }
  };
  std::thread other([&] { churn("b"); });
  churn("a");
  other.join();
  CHECK(registry->Collect().empty());
}

TEST_CASE("watchdog: with per-target histograms off, its targets share one of each, by loop") {
  pgwd::testing::FakeLoop loop;
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.registry = registry,
                                               .logger = silent(),
                                               .name = "fleet",
                                               .per_target_histograms = false});
  pgwd::TargetOptions o;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  for (const char* name : {"a", "b", "c"}) {
    o.name = name;
    w.add_target(o);
  }
  for (const char* family : {"pgwatchdog_probe_duration_seconds", "pgwatchdog_outage_seconds"}) {
    CAPTURE(family);
    CHECK(series_in(*registry, family) == 1);
    CHECK(metric_value(*registry, std::string(family) + "_count", {{"loop", "fleet"}}) == 0);
    CHECK(metric_value(*registry, std::string(family) + "_count", {{"target", "a"}}) == -1);
  }
  CHECK(series_in(*registry, "pgwatchdog_up") == 3);  // the rest stays per target
  CHECK(w.remove_target("a"));
  CHECK(series_in(*registry, "pgwatchdog_outage_seconds") == 1);  // not a's to remove
  {
    // Another watchdog on the registry makes the first one's end a sweep, not a drop.
    pgwd::Watchdog other(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
    o.name = "d";
    other.add_target(o);
    CHECK(series_in(*registry, "pgwatchdog_outage_seconds") == 2);
  }
  CHECK(series_in(*registry, "pgwatchdog_outage_seconds") == 1);
}
