// Removing some targets' series among many (docs/design.md §12): on a guarded registry
// (ScrapeGuard) a family is rebuilt, the staying series taken out and put back. What must hold
// whichever way it went: every removed series is gone, every staying one is there with exactly its
// value (counters, gauges, histogram buckets and sum), the owners' pointers follow their series,
// the series of another Watchdog on the registry are untouched, and a scrape through the guard,
// running the whole time on another thread, never misses a staying series nor sees a value move.
// The costs the sweep reports are asserted (passes of the family's search), not times.
#include <doctest/doctest.h>
#include <prometheus/registry.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/metric_families.hpp"
#include "metrics/scrape_guard.hpp"
#include "metrics/series_sweep.hpp"
#include "metrics/target_metrics.hpp"
#include "pgwd/guarded_registry.hpp"
#include "pgwd/watchdog.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"

using pgwd::testing::metric_value;
using namespace std::chrono_literals;

namespace {

/// Every sample of a registry: "name{labels} [bucket]" -> value, from one Collect().
using Samples = std::map<std::string, double>;

Samples samples_of(const std::vector<prometheus::MetricFamily>& families) {
  Samples out;
  for (const auto& family : families)
    for (const auto& metric : family.metric) {
      std::string key = family.name + "{";
      for (const auto& label : metric.label) key += label.name + "=" + label.value + ",";
      key += "}";
      switch (family.type) {
        case prometheus::MetricType::Counter:
          out[key] = metric.counter.value;
          break;
        case prometheus::MetricType::Gauge:
          out[key] = metric.gauge.value;
          break;
        case prometheus::MetricType::Histogram:
          out[key + " count"] = static_cast<double>(metric.histogram.sample_count);
          out[key + " sum"] = metric.histogram.sample_sum;
          for (const auto& bucket : metric.histogram.bucket)
            out[key + " le " + std::to_string(bucket.upper_bound)] =
                static_cast<double>(bucket.cumulative_count);
          break;
        default:
          break;
      }
    }
  return out;
}

/// The samples of `all` whose labels name one of `targets`.
Samples of_targets(const Samples& all, const std::vector<std::string>& targets) {
  const std::set<std::string, std::less<>> wanted(targets.begin(), targets.end());
  Samples out;
  for (const auto& [key, value] : all) {
    const std::size_t at = key.find("target=");
    if (at == std::string::npos) continue;
    const std::size_t from = at + 7;
    if (wanted.contains(std::string_view(key).substr(from, key.find(',', from) - from)))
      out.emplace_hint(out.end(), key, value);
  }
  return out;
}

std::string name(int i) {
  return "t" + std::to_string(i);
}

/// Each target's series with values of its own (i), so that a series put back with another's
/// value, or with none, shows.
void record(pgwd::TargetMetrics& m, int i) {
  for (int k = 0; k <= i % 7; ++k) m.disconnected(pgwd::Cause::closed);
  m.connect_failed(pgwd::Cause::auth_failed);
  m.reconnect(i % 2 == 0);
  m.probed(pgwd::ProbeResult::ok, std::chrono::microseconds(100 * (i % 50 + 1)));
  m.outage(std::chrono::milliseconds(i % 1000));
  m.in_hot_standby(i % 3 == 0);
  m.connection_moved(std::nullopt, pgwd::ConnectionState::healthy);
  for (int k = 0; k < i % 4; ++k) m.notification();
}

std::shared_ptr<spdlog::logger> silent() {
  return std::make_shared<spdlog::logger>("silent",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

struct Fleet {
  explicit Fleet(int n, bool guarded) : registry(std::make_shared<prometheus::Registry>()) {
    if (guarded) pgwd::ScrapeGuard::declare_guarded(registry);
    families = std::make_unique<pgwd::MetricFamilies>(*registry);
    for (int i = 0; i < n; ++i) {
      targets.push_back(std::make_unique<pgwd::TargetMetrics>(*families, name(i)));
      record(*targets.back(), i);
    }
  }
  /// Removes every target whose index `goes`; returns what remove_together reported.
  template <typename Goes>
  pgwd::TargetMetrics::Removal remove_if(Goes goes) {
    std::vector<pgwd::TargetMetrics*> doomed, staying;
    for (std::size_t i = 0; i < targets.size(); ++i)
      (goes(static_cast<int>(i)) ? doomed : staying).push_back(targets[i].get());
    const bool guarded = pgwd::ScrapeGuard::guarded(*registry);
    return pgwd::TargetMetrics::remove_together(doomed, staying,
                                                guarded ? registry.get() : nullptr);
  }
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<pgwd::MetricFamilies> families;
  std::vector<std::unique_ptr<pgwd::TargetMetrics>> targets;
};

}  // namespace

TEST_CASE(
    "series sweep: a rebuild puts the kept series back with their values and the slots follow") {
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::ScrapeGuard::declare_guarded(registry);
  auto& counters = prometheus::BuildCounter().Name("rebuild_total").Help("h").Register(*registry);
  auto& gauges = prometheus::BuildGauge().Name("rebuild_gauge").Help("h").Register(*registry);
  auto& histograms = prometheus::BuildHistogram().Name("rebuild_h").Help("h").Register(*registry);
  const prometheus::Histogram::BucketBoundaries buckets{0.1, 1, 10};
  const int n = 3000;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(name(i));
  std::vector<prometheus::Counter*> c;
  std::vector<prometheus::Gauge*> g;
  std::vector<prometheus::Histogram*> h;
  for (int i = 0; i < n; ++i) {
    c.push_back(&counters.Add({{"target", names[i]}, {"kind", "a"}}));
    c.back()->Increment(i);
    g.push_back(&gauges.Add({{"target", names[i]}}));
    g.back()->Set(-i);
    h.push_back(&histograms.Add({{"target", names[i]}}, buckets));
    for (int k = 0; k < i % 5; ++k) h.back()->Observe(0.05 * k * k);
  }
  const Samples before = samples_of(registry->Collect());
  pgwd::SeriesSweep<prometheus::Counter> cs(counters);
  pgwd::SeriesSweep<prometheus::Gauge> gs(gauges);
  pgwd::SeriesSweep<prometheus::Histogram> hs(histograms);
  std::vector<std::string> kept;
  for (int i = 0; i < n; ++i) {
    auto index = static_cast<std::size_t>(i);
    if (i % 2 == 0) {
      cs.add({{"target", names[index]}, {"kind", "a"}}, c[index]);
      gs.add({{"target", names[index]}}, g[index]);
      hs.add({{"target", names[index]}}, h[index]);
    } else {
      kept.push_back(names[index]);
      cs.keep({{"kind", "a"}, {"target", names[index]}}, &c[index]);  // any label order
      gs.keep({{"target", names[index]}}, &g[index]);
      hs.keep({{"target", names[index]}}, &h[index], &buckets);
    }
  }
  const auto outcome = cs.run(registry.get());
  CHECK(outcome.rebuilt);
  CHECK(outcome.in_order == n / 2);
  CHECK(outcome.visits == 0);  // nothing but ours in the family: every search ends at once
  CHECK(gs.run(registry.get()).rebuilt);
  CHECK(hs.run(registry.get()).rebuilt);

  const Samples after = samples_of(registry->Collect());
  CHECK(after == of_targets(before, kept));  // the kept ones exactly, nothing else
  // The slots point at the series now exported.
  for (int i = 1; i < n; i += 2) {
    const auto index = static_cast<std::size_t>(i);
    CHECK(c[index]->Value() == i);
    CHECK(g[index]->Value() == -i);
  }
  c[1]->Increment();
  g[1]->Set(7);
  h[1]->Observe(100);
  CHECK(metric_value(*registry, "rebuild_total", {{"target", "t1"}, {"kind", "a"}}) == 2);
  CHECK(metric_value(*registry, "rebuild_gauge", {{"target", "t1"}}) == 7);
  CHECK(metric_value(*registry, "rebuild_h_count", {{"target", "t1"}}) == 2);
}

TEST_CASE("series sweep: an unguarded registry is never rebuilt and loses the same series") {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("unguarded_total").Help("h").Register(registry);
  std::vector<prometheus::Counter*> series;
  for (int i = 0; i < 2000; ++i) series.push_back(&family.Add({{"target", name(i)}}));
  const std::vector<prometheus::Counter*> original = series;
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back(name(i));
  pgwd::SeriesSweep sweep(family);
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (i % 2 == 0)
      sweep.add({{"target", names[i]}}, series[i]);
    else
      sweep.keep({{"target", names[i]}}, &series[i]);
  }
  const auto outcome = sweep.run(nullptr);
  CHECK_FALSE(outcome.rebuilt);
  CHECK(outcome.in_order == 1000);
  CHECK(outcome.visits > 0);  // the searches passed the staying series: what a rebuild avoids
  CHECK(series == original);  // nothing moved
  CHECK(metric_value(registry, "unguarded_total", {{"target", "t1"}}) == 0);
  CHECK(metric_value(registry, "unguarded_total", {{"target", "t0"}}) == -1);
}

TEST_CASE(
    "target metrics: removing some targets - the staying ones keep every value - guarded or not") {
  // Small: unguarded, the searches are O(k·(n−k)) in the series.
  for (const bool guarded : {true, false}) {
    CAPTURE(guarded);
    Fleet fleet(600, guarded);
    std::vector<std::string> staying;
    for (int i = 0; i < 600; ++i)
      if (i % 3 != 0) staying.push_back(name(i));
    const Samples before = samples_of(fleet.registry->Collect());
    const auto removal = fleet.remove_if([](int i) { return i % 3 == 0; });
    CHECK(removal.in_order > 0);
    if (guarded)
      CHECK(removal.rebuilt > 0);
    else
      CHECK(removal.rebuilt == 0);
    const Samples after = samples_of(fleet.registry->Collect());
    Samples expected = of_targets(before, staying);
    for (const auto& [key, value] : before)  // build_info and anything without a target
      if (key.find("target=") == std::string::npos) expected[key] = value;
    CHECK(after == expected);
    CHECK(metric_value(*fleet.registry, "pgwatchdog_up", {{"target", "t0"}}) == -1);
    // The staying targets record into the series the registry exports.
    auto& t1 = *fleet.targets[1];
    t1.disconnected(pgwd::Cause::closed);
    t1.outage(std::chrono::seconds(2));
    t1.connection_moved(pgwd::ConnectionState::healthy, pgwd::ConnectionState::backoff);
    CHECK(metric_value(*fleet.registry, "pgwatchdog_disconnects_total",
                       {{"target", "t1"}, {"cause", "closed"}}) == 3);
    CHECK(metric_value(*fleet.registry, "pgwatchdog_outage_seconds_count", {{"target", "t1"}}) ==
          2);
    CHECK(metric_value(*fleet.registry, "pgwatchdog_up", {{"target", "t1"}}) == 0);
    // Their destructors remove what they now own: nothing of them is left.
    fleet.targets.clear();
    for (const auto& [key, value] : samples_of(fleet.registry->Collect()))
      CHECK_MESSAGE(key.find("target=") == std::string::npos, key);
  }
}

TEST_CASE("watchdog: remove_targets on a guarded registry leaves another watchdog's series alone") {
  pgwd::testing::FakeLoop loop;
  auto registry = std::make_shared<prometheus::Registry>();
  CHECK_FALSE(pgwd::ScrapeGuard::guarded(*registry));
  const auto exposed = pgwd::guarded_collectable(registry);  // what a host registers instead
  CHECK(pgwd::ScrapeGuard::guarded(*registry));
  pgwd::TargetOptions o;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  // Small: each of our series removed passes the other's series before it (O(ours × theirs)).
  pgwd::Watchdog other(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
  for (int i = 0; i < 50; ++i) {
    o.name = "other" + std::to_string(i);
    other.add_target(o);
  }
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
  std::vector<std::string> going, staying;
  for (int i = 0; i < 600; ++i) {
    o.name = name(i);
    w.add_target(o);
    (i % 2 ? staying : going).push_back(o.name);
  }
  std::vector<std::string> others;
  for (int i = 0; i < 50; ++i) others.push_back("other" + std::to_string(i));
  const Samples before = samples_of(registry->Collect());
  going.push_back("no such target");
  going.push_back(going.front());  // named twice: removed once
  CHECK(w.remove_targets(going) == 300);
  const Samples after = samples_of(registry->Collect());
  CHECK(of_targets(after, others) == of_targets(before, others));
  CHECK(of_targets(after, staying) == of_targets(before, staying));
  CHECK(of_targets(after, {"t0", "t598"}).empty());
  CHECK(metric_value(*registry, "pgwatchdog_connections",
                     {{"target", "t1"}, {"state", "waiting"}}) == 1);
  CHECK(w.target_names().size() == 300);
  CHECK(w.remove_target("t1"));  // a moved series is found where it now is
  CHECK(metric_value(*registry, "pgwatchdog_up", {{"target", "t1"}}) == -1);
  o.name = "t0";  // a removed name can come back, with fresh series
  w.add_target(o);
  CHECK(metric_value(*registry, "pgwatchdog_connections",
                     {{"target", "t0"}, {"state", "waiting"}}) == 1);
}

TEST_CASE("target metrics: a scrape through the guard all along never misses a staying series" *
          doctest::test_suite("thread")) {
  Fleet fleet(300, true);  // small: TSan, and a scrape copies every sample each time
  std::vector<std::string> staying;
  for (int i = 0; i < 300; ++i)
    if (i % 2) staying.push_back(name(i));
  const Samples expected = of_targets(samples_of(fleet.registry->Collect()), staying);
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad{0};
  std::string first_bad;
  std::thread scraper([&] {
    // Until the removal is over, and at least a few scrapes after it.
    for (int after_done = 0; after_done < 3;) {
      const bool was_done = done.load();
      const Samples seen = of_targets(samples_of(pgwd::collect_guarded(*fleet.registry)), staying);
      if (seen != expected && bad++ == 0) {
        for (const auto& [key, value] : expected) {
          const auto it = seen.find(key);
          if (it == seen.end() || it->second != value) {
            first_bad = key + (it == seen.end() ? " missing" : " changed");
            break;
          }
        }
      }
      ++scrapes;
      if (was_done) ++after_done;
    }
  });
  // In rounds, so that removals and scrapes interleave.
  for (int round = 0; round < 6; ++round) {
    const auto removal = fleet.remove_if([round](int i) { return i % 2 == 0 && (i / 2) % 6 == round; });
    CHECK(removal.rebuilt > 0);
  }
  done = true;
  scraper.join();
  CHECK(scrapes.load() >= 3);
  CHECK_MESSAGE(bad.load() == 0, first_bad);
  CHECK(of_targets(samples_of(fleet.registry->Collect()), {"t0", "t2", "t4"}).empty());
}

TEST_CASE(
    "watchdog: remove_targets while a host scrapes its guarded collectable on another thread" *
    doctest::test_suite("thread")) {
  pgwd::testing::FakeLoop loop;
  auto registry = std::make_shared<prometheus::Registry>();
  const auto exposed = pgwd::guarded_collectable(registry);
  pgwd::Watchdog w(loop, pgwd::WatchdogOptions{.registry = registry, .logger = silent()});
  pgwd::TargetOptions o;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  std::vector<std::string> going, staying;
  for (int i = 0; i < 300; ++i) {  // small: TSan, and a scrape copies every sample each time
    o.name = name(i);
    w.add_target(o);
    (i % 2 ? staying : going).push_back(o.name);
  }
  const Samples expected = of_targets(samples_of(exposed->Collect()), staying);
  REQUIRE(expected.size() > 300 / 2 * 20);
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad{0};
  std::thread scraper([&] {
    for (int after_done = 0; after_done < 3;) {
      const bool was_done = done.load();
      if (of_targets(samples_of(exposed->Collect()), staying) != expected) ++bad;
      ++scrapes;
      if (was_done) ++after_done;
    }
  });
  for (std::size_t from = 0; from < going.size(); from += 10)  // in rounds, interleaving
  {
    const std::size_t count = std::min<std::size_t>(10, going.size() - from);
    CHECK(w.remove_targets(std::span(going).subspan(from, count)) == count);
  }
  done = true;
  scraper.join();
  CHECK(scrapes.load() >= 3);
  CHECK(bad.load() == 0);
  CHECK(w.target_names().size() == staying.size());
  CHECK(of_targets(samples_of(exposed->Collect()), {"t0", "t2"}).empty());
}
