#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <vector>

namespace pgwd {

/// Lets a scrape of a registry never see a metric family half rebuilt.
///
/// Why: prometheus-cpp 1.0.1 can remove a series only by a search of its family from the first
/// series on, so removing k targets' series from families of n costs O(k·(n−k)) however it is
/// ordered (5,000 of 10,000 targets: over a minute). The linear way is to rebuild the family:
/// take all of our series out in the family's own order (each found at once) and put the ones
/// that stay back with their values (TargetMetrics::remove_together). While that runs, the
/// series that stay are missing from the family; a scrape that collects through
/// collect_guarded() waits for it (one family at a time, milliseconds) instead of seeing them
/// missing. Series of other Watchdogs on the registry are never taken out.
///
/// Rebuilding happens only on a registry whose owner declared (declare_guarded) that every
/// scrape of it goes through collect_guarded(): the daemon does. On any other registry, e.g. an
/// embedding host's exposed with its own prometheus::Exposer, series are removed by the search,
/// which no scrape can see half done. Thread-safe.
class ScrapeGuard {
 public:
  /// The caller promises that from now on every scrape of `registry` is collect_guarded().
  static void declare_guarded(const std::shared_ptr<prometheus::Registry>& registry);
  /// Whether declare_guarded() was called for this registry (while it lives).
  static bool guarded(const prometheus::Registry& registry);

  /// Held while a family of `registry` is rebuilt; a no-op guard if it is not guarded.
  explicit ScrapeGuard(const prometheus::Registry& registry);
  ~ScrapeGuard();
  ScrapeGuard(const ScrapeGuard&) = delete;
  ScrapeGuard& operator=(const ScrapeGuard&) = delete;

  struct Gate;  ///< one per guarded registry (scrape_guard.cpp)

 private:
  std::shared_ptr<Gate> gate_;
  std::unique_lock<std::mutex> lock_;
};

/// registry.Collect(), never while a Watchdog on it is rebuilding a family (see ScrapeGuard).
std::vector<prometheus::MetricFamily> collect_guarded(const prometheus::Registry& registry);

}  // namespace pgwd
