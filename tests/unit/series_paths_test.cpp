// The same scripted scenario scraped through the old path (prometheus-cpp families in a
// Registry, written by the daemon's /metrics writer) and the new one (the library's series
// store): the same families, help texts, types, series, labels and values. Compared modulo
// order: prometheus-cpp writes counters, then gauges, then histograms, each family's series in
// its hash map's order; the store writes the families in families.hpp's order and the series
// row by row.
#include <doctest/doctest.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/metrics_text.hpp"
#include "metrics/loop_metrics.hpp"
#include "metrics/loop_series.hpp"
#include "metrics/metric_families.hpp"
#include "metrics/store.hpp"
#include "metrics/target_metrics.hpp"
#include "metrics/target_series.hpp"
#include "pool/pool_metrics.hpp"
#include "pool/pool_series.hpp"

using namespace std::chrono_literals;

namespace {

/// Each family's block (`# HELP`, `# TYPE`, then its sample lines sorted), by family name.
/// Checks on the way that every family's lines are together, under its own head.
std::map<std::string, std::string> by_family(const std::string& text) {
  std::map<std::string, std::vector<std::string>> samples;
  std::map<std::string, std::string> heads;
  std::istringstream in(text);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# HELP ")) {
      current = line.substr(7, line.find(' ', 7) - 7);
      REQUIRE_MESSAGE(!heads.contains(current), "family written twice: " << current);
      heads[current] = line + "\n";
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      heads[current] += line + "\n";
      continue;
    }
    REQUIRE_MESSAGE(line.starts_with(current), "a line outside its family: " << line);
    samples[current].push_back(line);
  }
  std::map<std::string, std::string> blocks;
  for (auto& [family, lines] : samples) {
    std::sort(lines.begin(), lines.end());
    std::string block = heads[family];
    for (const auto& line : lines) block += line + "\n";
    blocks[family] = block;
  }
  return blocks;
}

/// What the scenario does to one target, whichever path records it.
template <typename Target>
void script_target(Target& target, int n) {
  target.connection_moved(std::nullopt, pgwd::ConnectionState::waiting);
  target.connection_moved(pgwd::ConnectionState::waiting, pgwd::ConnectionState::resolving);
  target.connection_moved(pgwd::ConnectionState::resolving, pgwd::ConnectionState::connecting);
  target.connection_moved(pgwd::ConnectionState::connecting, pgwd::ConnectionState::healthy);
  if (n % 4 == 1) target.connection_moved(pgwd::ConnectionState::healthy, std::nullopt);
  for (int k = 0; k < n; ++k) {
    target.probed(pgwd::ProbeResult::ok, std::chrono::microseconds(311 * k + 7));
    target.probed(k % 3 == 0 ? pgwd::ProbeResult::error : pgwd::ProbeResult::timeout, 1s);
    target.outage(std::chrono::milliseconds(211 * k + 1));
    target.disconnected(k % 2 ? pgwd::Cause::server_shutdown : pgwd::Cause::probe_timeout);
    target.connect_failed(pgwd::Cause::connect_timeout);
    target.reconnect(k % 3 != 0);
    target.wakeup();
    target.notification();
    target.notice();
  }
  if (n % 5 == 2) target.disconnected(pgwd::Cause::dns);  // outside the usual causes
  if (n % 5 == 3) target.connect_failed(pgwd::Cause::server_crash);
  target.in_hot_standby(n % 2 == 0);
  target.server_changed(n % 2 ? pgwd::ServerChange::restart : pgwd::ServerChange::other_server);
}

template <typename Loop>
void script_loop(Loop& loop, int n) {
  for (int k = 0; k < n; ++k) loop.timer_late(std::chrono::microseconds(1733 * k));
  loop.slow_callback(pgwd::CallbackPhase::connect_poll);
  loop.slow_callback(pgwd::CallbackPhase::timer);
}

template <typename Pool>
void script_pool(Pool& pool, int n) {
  pool.set_sizes(n, n + 1, 1, n % 2);
  for (int k = 0; k < n; ++k) pool.observe_acquire(0.00003 * k);
  pool.count_found_dead();
  pool.count_replaced("max_lifetime");
  pool.count_replaced(n % 2 ? "server_shutdown" : "broken");
}

}  // namespace

TEST_CASE("series paths: the store exports what the prometheus-cpp families exported") {
  // The old path: families in a registry.
  auto registry = std::make_shared<prometheus::Registry>();
  pgwd::MetricFamilies families(*registry);
  // The new one: the store.
  auto series_store = pgwd::make_series_store();
  pgwd::Store& store = pgwd::Store::of(*series_store);

  pgwd::LoopMetrics old_main(families, "main", false);
  pgwd::LoopMetrics old_fleet(families, "fleet", true);
  pgwd::LoopSeries new_main(store, "main", false);
  pgwd::LoopSeries new_fleet(store, "fleet", true);
  script_loop(old_main, 7);
  script_loop(new_main, 7);
  script_loop(old_fleet, 3);
  script_loop(new_fleet, 3);

  std::vector<std::unique_ptr<pgwd::TargetMetrics>> old_targets;
  std::vector<std::unique_ptr<pgwd::TargetSeries>> new_targets;
  for (int i = 0; i < 24; ++i) {
    const std::string name = (i % 2 ? "fleet-" : "db-") + std::to_string(i);
    const bool pooled = i % 3 == 0;
    old_targets.push_back(std::make_unique<pgwd::TargetMetrics>(
        families, name, i % 2 ? old_fleet.shared_histograms() : nullptr, pooled));
    new_targets.push_back(std::make_unique<pgwd::TargetSeries>(
        store, name, i % 2 ? new_fleet.shared_histograms() : nullptr, pooled));
    script_target(*old_targets.back(), i);
    script_target(*new_targets.back(), i);
  }
  // Every other target removed, as a reload does.
  for (std::size_t i = 0; i < old_targets.size(); i += 2) {
    old_targets[i].reset();
    new_targets[i].reset();
  }

  std::vector<std::unique_ptr<pgwd::PoolMetrics>> old_pools;
  std::vector<std::unique_ptr<pgwd::PoolSeries>> new_pools;
  for (int i = 0; i < 3; ++i) {
    old_pools.push_back(std::make_unique<pgwd::PoolMetrics>(registry, "pool-" + std::to_string(i)));
    new_pools.push_back(std::make_unique<pgwd::PoolSeries>(store, "pool-" + std::to_string(i)));
    script_pool(*old_pools.back(), i + 2);
    script_pool(*new_pools.back(), i + 2);
  }
  old_pools[1].reset();
  new_pools[1].reset();

  std::string old_text;
  pgwd::daemon::append_registry_text(*registry, old_text);
  const std::string new_text = series_store->text();
  const auto old_blocks = by_family(old_text);
  const auto new_blocks = by_family(new_text);
  REQUIRE(old_blocks.size() == 21);  // none of the lending or daemon families has series here
  CHECK(new_blocks.size() == old_blocks.size());
  for (const auto& [family, block] : old_blocks) {
    CAPTURE(family);
    REQUIRE(new_blocks.contains(family));
    CHECK(new_blocks.at(family) == block);
  }
  // Same lines, same bytes, in another order.
  CHECK(new_text.size() == old_text.size());
}
