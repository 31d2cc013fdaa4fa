// The daemon's text exposition writer (daemon/metrics_text.hpp) against prometheus-cpp's own
// TextSerializer, byte for byte: on the registry the daemon really has (the library's families,
// targets with events recorded), on odd values and labels, and on every metric type.
#include "daemon/metrics_text.hpp"

#include <doctest/doctest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "metrics/loop_metrics.hpp"
#include "metrics/metric_families.hpp"
#include "metrics/target_metrics.hpp"

using namespace std::chrono_literals;
using pgwd::daemon::append_registry_text;
using pgwd::daemon::append_text_exposition;

namespace {

std::string ours(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  append_text_exposition(families, out);
  return out;
}

std::string theirs(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

/// What /metrics serves: the registry read in place, without Collect().
std::string live(const prometheus::Registry& registry) {
  std::string out;
  append_registry_text(registry, out);
  return out;
}

/// One gauge family holding `values`, one series each.
std::vector<prometheus::MetricFamily> gauges_of(const std::vector<double>& values) {
  prometheus::MetricFamily family;
  family.name = "value";
  family.help = "values";
  family.type = prometheus::MetricType::Gauge;
  for (std::size_t i = 0; i < values.size(); ++i) {
    prometheus::ClientMetric metric;
    metric.label.push_back({"i", std::to_string(i)});
    metric.gauge.value = values[i];
    family.metric.push_back(metric);
  }
  return {family};
}

}  // namespace

TEST_CASE("exposition: the daemon's own registry is written as TextSerializer writes it") {
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::MetricFamilies families(*registry);
  for (const bool shared_histograms : {false, true}) {
    CAPTURE(shared_histograms);
    pgwd::LoopMetrics loop(families, shared_histograms ? "shared" : "own", shared_histograms);
    std::vector<std::unique_ptr<pgwd::TargetMetrics>> targets;
    for (int i = 0; i < 20; ++i) {
      targets.push_back(std::make_unique<pgwd::TargetMetrics>(
          families, (shared_histograms ? "s" : "t") + std::to_string(i), loop.shared_histograms()));
      auto& target = *targets.back();
      target.connection_moved(std::nullopt, pgwd::ConnectionState::resolving);
      target.connection_moved(pgwd::ConnectionState::resolving, pgwd::ConnectionState::healthy);
      for (int k = 0; k < i; ++k) {
        target.probed(pgwd::ProbeResult::ok, std::chrono::microseconds(137 * k + 1));
        target.outage(std::chrono::milliseconds(97 * k + 3));
        target.disconnected(pgwd::Cause::idle_session_timeout);
        target.connect_failed(pgwd::Cause::auth_failed);
        target.wakeup();
      }
      target.probed(pgwd::ProbeResult::timeout, 7s);
      target.outage(10000s);  // beyond the last bucket: only +Inf counts it
    }
    loop.timer_late(std::chrono::nanoseconds(1234567));
    const auto collected = registry->Collect();
    REQUIRE(collected.size() > 10);
    const std::string expected = theirs(collected);
    CHECK(expected.find("pgwatchdog_outage_seconds_bucket") != std::string::npos);
    CHECK(ours(collected) == expected);
    CHECK(live(*registry) == expected);
  }
  // Every series removed again (the targets and loops are gone): the families write nothing.
  CHECK(live(*registry) == theirs(registry->Collect()));
  CHECK(live(*registry).find("pgwatchdog_up") == std::string::npos);
}

TEST_CASE("exposition: every metric type, odd label values and empty families match") {
  prometheus::Registry registry;
  auto& counters = prometheus::BuildCounter()
                       .Name("odd_total")
                       .Help("Label values with \"quotes\" in the help")
                       .Labels({{"constant", "c"}})
                       .Register(registry);
  counters.Add({{"value", "back\\slash"}}).Increment(3);
  counters.Add({{"value", "a \"quoted\" word"}}).Increment(0.5);
  counters.Add({{"value", "two\nlines"}});
  counters.Add({{"value", ""}}).Increment(1e20);
  counters.Add({{"value", "ünïcödé ✓"}}).Increment(123456789.125);
  counters.Add({{"value", "\\\"\n\\n"}, {"second", "x"}});
  // Registered without a series: TextSerializer writes nothing for it, not even HELP.
  prometheus::BuildCounter().Name("empty_total").Help("never used").Register(registry);
  prometheus::BuildGauge().Name("empty_gauge").Help("never used").Register(registry);
  auto& gauges = prometheus::BuildGauge().Name("gauge_values").Register(registry);  // no HELP
  gauges.Add({{"v", "nan"}}).Set(std::numeric_limits<double>::quiet_NaN());
  gauges.Add({{"v", "inf"}}).Set(std::numeric_limits<double>::infinity());
  gauges.Add({{"v", "-inf"}}).Set(-std::numeric_limits<double>::infinity());
  gauges.Add({{"v", "-0"}}).Set(-0.0);
  gauges.Add({{"v", "negative"}}).Set(-42);
  gauges.Add({{"v", "small"}}).Set(1e-7);
  gauges.Add({{"v", "sum"}}).Set(0.1 + 0.2);
  gauges.Add({{"v", "big"}}).Set(9007199254740993.0);
  gauges.Add({});  // a series without labels
  auto& histograms =
      prometheus::BuildHistogram().Name("latency_seconds").Help("a histogram").Register(registry);
  auto& histogram = histograms.Add(
      {{"target", "a"}}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.1, 1, 2.5, 1e3});
  for (double v : {0.0001, 0.0007, 0.05, 0.05, 3.0, 1e9}) histogram.Observe(v);
  histograms.Add({{"target", "b"}}, prometheus::Histogram::BucketBoundaries{});
  auto& summaries =
      prometheus::BuildSummary().Name("rpc_seconds").Help("a summary").Register(registry);
  const prometheus::Summary::Quantiles quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};
  auto& summary = summaries.Add({{"method", "get"}}, quantiles);
  for (int i = 1; i <= 100; ++i) summary.Observe(i / 1000.0);
  summaries.Add({{"method", "empty"}}, quantiles);  // quantiles print Nan

  const auto collected = registry.Collect();
  const std::string expected = theirs(collected);
  CHECK(expected.find("Nan") != std::string::npos);
  CHECK(expected.find("+Inf") != std::string::npos);
  CHECK(expected.find("empty_total") == std::string::npos);
  CHECK(ours(collected) == expected);
  CHECK(live(registry) == expected);
}

TEST_CASE("exposition: timestamps and an untyped family match") {
  prometheus::MetricFamily family;
  family.name = "untyped_thing";
  family.help = "an untyped family";
  family.type = prometheus::MetricType::Untyped;
  prometheus::ClientMetric metric;
  metric.untyped.value = 2.75;
  metric.timestamp_ms = 1700000000123;
  family.metric.push_back(metric);
  metric.timestamp_ms = -5;
  family.metric.push_back(metric);
  const std::vector<prometheus::MetricFamily> families{family};
  CHECK(ours(families) == theirs(families));
  CHECK(ours(families) ==
        "# HELP untyped_thing an untyped family\n# TYPE untyped_thing untyped\n"
        "untyped_thing 2.75 1700000000123\nuntyped_thing 2.75 -5\n");
}

TEST_CASE("exposition: numbers are formatted as TextSerializer's %.16g, on many values") {
  std::vector<double> values = {0,
                                1,
                                -1,
                                1e15 - 1,
                                1e15,
                                1e15 + 1,
                                1e16,
                                1e16 + 2,
                                1e17,
                                1e-4,
                                1e-5,
                                123.456,
                                2.5e-300,
                                5e-324,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::denorm_min(),
                                static_cast<double>(std::numeric_limits<std::int64_t>::max())};
  std::mt19937_64 random(20261201);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = random();
    double any;
    std::memcpy(&any, &bits, sizeof any);
    values.push_back(any);  // any bit pattern at all
    values.push_back(std::ldexp(static_cast<double>(random() % 1000000), -(i % 40)));  // fractions
    values.push_back(static_cast<double>(random() >> (i % 64)));  // integers of every size
  }
  const auto families = gauges_of(values);
  CHECK(ours(families) == theirs(families));
}

TEST_CASE("exposition: HELP escapes backslash and line feed, as the text format requires") {
  // TextSerializer writes HELP raw, which breaks the line for a help text with a line feed: here
  // the two differ on purpose. pgwatchdog's own help texts have neither character.
  prometheus::MetricFamily family;
  family.name = "help_escaped";
  family.help = "a \\ backslash, a \"quote\" and\na line feed";
  family.type = prometheus::MetricType::Counter;
  family.metric.emplace_back();
  CHECK(ours({family}) ==
        "# HELP help_escaped a \\\\ backslash, a \"quote\" and\\na line feed\n"
        "# TYPE help_escaped counter\nhelp_escaped 0\n");
}

TEST_CASE("exposition: appends to what the buffer holds, and an empty registry writes nothing") {
  std::string out = "kept\n";
  append_text_exposition({}, out);
  CHECK(out == "kept\n");
  prometheus::Registry registry;
  prometheus::BuildGauge().Name("g").Help("h").Register(registry).Add({}).Set(1);
  append_text_exposition(registry.Collect(), out);
  CHECK(out == "kept\n# HELP g h\n# TYPE g gauge\ng 1\n");
  append_registry_text(prometheus::Registry{}, out);
  append_registry_text(registry, out);
  CHECK(out == "kept\n# HELP g h\n# TYPE g gauge\ng 1\n# HELP g h\n# TYPE g gauge\ng 1\n");
}

TEST_CASE("exposition: the registry is read safely while other threads add, change and remove" *
          doctest::test_suite("thread")) {
  // Run under TSan and ASan in CI: reading in place takes the mutexes Collect() takes.
  prometheus::Registry registry;
  auto& counters = prometheus::BuildCounter().Name("c_total").Help("h").Register(registry);
  auto& histograms = prometheus::BuildHistogram().Name("h_seconds").Help("h").Register(registry);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int round = 0; !stop.load(); ++round) {
      const std::string name = "s" + std::to_string(round % 50);
      auto& counter = counters.Add({{"series", name}});
      counter.Increment();
      auto& histogram =
          histograms.Add({{"series", name}}, prometheus::Histogram::BucketBoundaries{1, 2});
      histogram.Observe(round % 3);
      if (round % 7 == 0) {
        counters.Remove(&counter);
        histograms.Remove(&histogram);
      }
    }
  });
  for (int scrape = 0; scrape < 200; ++scrape) {
    const std::string text = live(registry);
    CHECK((text.empty() || text.back() == '\n'));
  }
  stop = true;
  writer.join();
  CHECK(live(registry) == theirs(registry.Collect()));
}
