#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <vector>

namespace pgwd {

/// Lets a scrape of a registry never see a metric family half rebuilt.
///
/// Why: prometheus-cpp 1.0.1 can remove a series only by a search of its family from the first
/// series on, so removing k targets' series from families of n costs O(k·(n−k)) however it is
/// ordered (5,000 of 10,000 targets: over a minute). The linear way is to rebuild the family:
/// take all of our series out in the family's own order (each found at once) and put the ones
/// that stay back with their values (TargetMetrics::remove_together). While that runs, the
/// series that stay are missing from the family. A rebuild holds a ScrapeGuard; a scrape that
/// collects through collect_guarded() never returns what it collected while one was held: it
/// waits for the rebuild of that family to end and collects again. A generation count, not a
/// lock held over the scrape: the loop must never wait for a scrape (one Collect of 10,000
/// targets takes 0.6 s), only a scrape for the loop's rebuild of one family (milliseconds).
/// Series of other Watchdogs on the registry are never taken out.
///
/// Rebuilding happens only on a registry whose owner declared (declare_guarded) that every
/// scrape of it goes through collect_guarded(): the daemon does, and so does a host that exposes
/// pgwd::guarded_collectable() (pgwd/guarded_registry.hpp). On any other registry, e.g. one a
/// host registers with its prometheus::Exposer as it is, series are removed by the search,
/// which no scrape can see half done. Thread-safe.
class ScrapeGuard {
 public:
  /// The caller promises that from now on every scrape of `registry` is collect_guarded().
  static void declare_guarded(const std::shared_ptr<prometheus::Registry>& registry);
  /// Whether declare_guarded() was called for this registry (while it lives).
  static bool guarded(const prometheus::Registry& registry);

  /// Held while a family of `registry` is rebuilt; does nothing if it is not guarded.
  explicit ScrapeGuard(const prometheus::Registry& registry);
  ~ScrapeGuard();
  ScrapeGuard(const ScrapeGuard&) = delete;
  ScrapeGuard& operator=(const ScrapeGuard&) = delete;

  struct Gate;  ///< one per guarded registry (scrape_guard.cpp)

 private:
  std::shared_ptr<Gate> gate_;
};

/// registry.Collect(), and none that overlapped a rebuild of one of its families (see
/// ScrapeGuard): such a one is collected again once the rebuild is over.
std::vector<prometheus::MetricFamily> collect_guarded(const prometheus::Registry& registry);

/// The same guard around any read of the registry: runs `read` once no rebuild is under way, and
/// again (from the start: `read` must discard what a previous run produced) while a rebuild began
/// or ended during it. collect_guarded() is this around Collect(); the daemon's /metrics, which
/// reads the registry in place (daemon/metrics_text.hpp), uses it directly.
void read_guarded(const prometheus::Registry& registry, const std::function<void()>& read);

}  // namespace pgwd
