// The library's series store (metrics/store.hpp) and its two outputs: the text writer behind
// SeriesStore::text() and the prometheus-cpp Collectable, which must say the same thing.
#include <doctest/doctest.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/exposition.hpp"
#include "metrics/families.hpp"
#include "metrics/lent_series.hpp"
#include "metrics/loop_series.hpp"
#include "metrics/store.hpp"
#include "metrics/target_series.hpp"
#include "pgwd/prometheus_collectable.hpp"
#include "pgwd/version.hpp"
#include "pool/pool_series.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;

namespace {

pgwd::Store& store_of(const std::shared_ptr<pgwd::SeriesStore>& store) {
  return pgwd::Store::of(*store);
}

std::string serialized(const std::shared_ptr<pgwd::SeriesStore>& store) {
  return prometheus::TextSerializer().Serialize(pgwd::prometheus_collectable(store)->Collect());
}

/// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(prefix)) found.push_back(line);
  return found;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// A target that saw a bit of everything.
void exercise(pgwd::TargetSeries& target, int n) {
  target.connection_moved(std::nullopt, pgwd::ConnectionState::resolving);
  target.connection_moved(pgwd::ConnectionState::resolving, pgwd::ConnectionState::healthy);
  for (int k = 0; k < n; ++k) {
    target.probed(pgwd::ProbeResult::ok, std::chrono::microseconds(137 * k + 1));
    target.outage(std::chrono::milliseconds(97 * k + 3));
    target.disconnected(pgwd::Cause::idle_session_timeout);
    target.connect_failed(pgwd::Cause::auth_failed);
    target.wakeup();
    target.reconnect(k % 2 == 0);
  }
  target.probed(pgwd::ProbeResult::timeout, 7s);
  target.outage(10000s);  // beyond the last bucket: only +Inf counts it
  target.in_hot_standby(n % 2 == 1);
}

}  // namespace

TEST_CASE("series store: the text writer and the prometheus-cpp collectable say the same") {
  auto store = pgwd::make_series_store();
  pgwd::LoopSeries own(store_of(store), "own");
  pgwd::LoopSeries shared(store_of(store), "shared", true);
  std::vector<std::unique_ptr<pgwd::TargetSeries>> targets;
  for (int i = 0; i < 10; ++i) {
    targets.push_back(std::make_unique<pgwd::TargetSeries>(store_of(store), "t" + std::to_string(i),
                                                           nullptr, i % 3 == 0));
    exercise(*targets.back(), i);
    targets.push_back(std::make_unique<pgwd::TargetSeries>(store_of(store), "s" + std::to_string(i),
                                                           shared.shared_histograms()));
    exercise(*targets.back(), i);
  }
  targets.front()->disconnected(pgwd::Cause::dns);  // not a usual cause: a series made late
  targets.front()->server_changed(pgwd::ServerChange::restart);
  own.timer_late(1234567ns);
  own.slow_callback(pgwd::CallbackPhase::connect_poll);
  pgwd::LentSeries lent(store_of(store), "lender \"quoted\"\nand\\slashed");
  lent.lent().increment();
  lent.probes().increment(3);
  lent.death("server_shutdown").increment();
  lent.take_back("alive").increment();
  lent.take_back("dead").increment();
  pgwd::PoolSeries pool(store_of(store), "orders");
  pool.set_sizes(2, 1, 0, 4);
  pool.observe_acquire(0.00002);
  pool.count_replaced("max_lifetime");
  pool.count_found_dead();

  const std::string text = store->text();
  CHECK(text == serialized(store));
  // Every family once, however late its series were made; a series' labels by name, as
  // prometheus-cpp writes them.
  for (const char* family : {"pgwatchdog_disconnects_total", "pgwatchdog_up",
                             "pgwatchdog_lent_take_backs_total", "pgwatchdog_pool_replaced_total"})
    CHECK(count_of(text, std::string("# TYPE ") + family + " ") == 1);
  CHECK(lines_with(text, "pgwatchdog_disconnects_total{cause=\"dns\",target=\"t0\"} 1").size() ==
        1);
  CHECK(lines_with(text, "pgwatchdog_server_changes_total{change=\"restart\",target=\"t0\"} 1")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_server_changes_total{target=\"t1\"").empty());  // not pooled
  CHECK(lines_with(text,
                   "pgwatchdog_lent_connections{target=\"lender \\\"quoted\\\"\\nand\\\\"
                   "slashed\"} 1")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_probe_duration_seconds_count{loop=\"shared\"} 45").size() ==
        1);
}

TEST_CASE("series store: a series' own label goes among its row's labels by name, escaped") {
  auto store = pgwd::make_series_store();
  auto row =
      std::make_shared<pgwd::Row>(std::vector<pgwd::Label>{{"z_last", "2"}, {"a_first", "1"}});
  row->counter(pgwd::families::disconnects, "middle", "plain").increment();
  row->counter(pgwd::families::disconnects, "middle", "a \"quote\", a\nline and a \\").increment(2);
  row->counter(pgwd::families::disconnects, "0_before", "b").increment(3);
  row->counter(pgwd::families::disconnects, "zz_after", "c").increment(4);
  row->histogram(pgwd::families::probe_duration, "middle", "h").observe(0.001);
  row->gauge(pgwd::families::up).set(1);
  const pgwd::RowHandle published = store_of(store).publish(std::move(row));

  const std::string text = store->text();
  CHECK(text == serialized(store));
  const std::string family = "pgwatchdog_disconnects_total";
  CHECK(lines_with(text, family + "{a_first=\"1\",middle=\"plain\",z_last=\"2\"} 1").size() == 1);
  CHECK(lines_with(text, family + "{a_first=\"1\",middle=\"a \\\"quote\\\", a\\nline and a "
                                  "\\\\\",z_last=\"2\"} 2")
            .size() == 1);
  CHECK(lines_with(text, family + "{0_before=\"b\",a_first=\"1\",z_last=\"2\"} 3").size() == 1);
  CHECK(lines_with(text, family + "{a_first=\"1\",z_last=\"2\",zz_after=\"c\"} 4").size() == 1);
  CHECK(lines_with(text,
                   "pgwatchdog_probe_duration_seconds_bucket{a_first=\"1\",middle=\"h\","
                   "z_last=\"2\",le=\"+Inf\"} 1")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_up{a_first=\"1\",z_last=\"2\"} 1").size() == 1);
}

TEST_CASE("series store: a histogram counts a bound in its own bucket and agrees with its count") {
  auto store = pgwd::make_series_store();
  pgwd::LoopSeries loop(store_of(store), "l");
  loop.timer_late(1ms);     // exactly the first bound (0.001): counted there
  loop.timer_late(1001us);  // just above it
  loop.timer_late(1h);      // above every bound: +Inf only
  const std::string text = store->text();
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_bucket{loop=\"l\",le=\"0.001\"} 1")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_bucket{loop=\"l\",le=\"0.005\"} 2")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_bucket{loop=\"l\",le=\"2.5\"} 2")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_bucket{loop=\"l\",le=\"+Inf\"} 3")
            .size() == 1);
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_count{loop=\"l\"} 3").size() == 1);
  CHECK(lines_with(text, "pgwatchdog_event_loop_lag_seconds_sum{loop=\"l\"} 3600.002001").size() ==
        1);
}

TEST_CASE("series store: a removed target's series go and the others stay as they were") {
  auto store = pgwd::make_series_store();
  auto gone = std::make_unique<pgwd::TargetSeries>(store_of(store), "gone");
  pgwd::TargetSeries stays(store_of(store), "stays");
  exercise(*gone, 3);
  exercise(stays, 4);
  gone->disconnected(pgwd::Cause::dns);  // a late row goes too
  const auto before = store_of(store).snapshot();
  const std::string stays_before = [&] {
    std::string lines;
    for (const auto& line : lines_with(store->text(), "pgwatchdog_"))
      if (line.find("target=\"stays\"") != std::string::npos) lines += line + "\n";
    return lines;
  }();
  gone.reset();
  const std::string text = store->text();
  CHECK(text.find("target=\"gone\"") == std::string::npos);
  std::string stays_after;
  for (const auto& line : lines_with(text, "pgwatchdog_"))
    if (line.find("target=\"stays\"") != std::string::npos) stays_after += line + "\n";
  CHECK(count_of(stays_before, "\n") > 60);
  CHECK(stays_after == stays_before);
  // A scrape that took its rows before still reads them: they are freed when it lets go.
  std::string held;
  pgwd::append_exposition(before, held);
  CHECK(held.find("pgwatchdog_disconnects_total{cause=\"dns\",target=\"gone\"} 1") !=
        std::string::npos);
}

TEST_CASE("series store: an empty store writes build_info alone") {
  auto store = pgwd::make_series_store();
  const std::string text = store->text();
  CHECK(
      text.starts_with("# HELP pgwatchdog_build_info Version of pgwatchdog and of the libpq it "
                       "runs with; always 1\n# TYPE pgwatchdog_build_info gauge\n"
                       "pgwatchdog_build_info{libpq=\""));
  CHECK(text.find("\",version=\"" + std::string(pgwd::kVersion) + "\"} 1\n") != std::string::npos);
  CHECK(count_of(text, "\n") == 3);
  CHECK(text == serialized(store));
}

TEST_CASE("series store: a target name and a watchdog name are taken once per store") {
  auto store = pgwd::make_series_store();
  auto other = pgwd::make_series_store();
  auto a = store_of(store).claim_target("a");
  REQUIRE(a);
  CHECK_FALSE(store_of(store).claim_target("a"));
  CHECK(store_of(other).claim_target("a"));  // another store: another namespace
  a.reset();
  CHECK(store_of(store).claim_target("a"));  // released with its claim
  auto first = store_of(store).claim_watchdog("");
  auto second = store_of(store).claim_watchdog("");
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->name() == "watchdog");
  CHECK(second->name() == "watchdog-2");
  CHECK_FALSE(store_of(store).claim_watchdog("watchdog"));
  CHECK(store_of(store).claim_watchdog("mine"));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
