#pragma once

/// \file
/// Where a Watchdog keeps its metrics: a store the library owns (watchdog/metrics/store.hpp),
/// one row of series per target, per loop, per lending target and per pool. Several Watchdogs
/// (and the pools on them) may share one store: a target name, and a watchdog's name, is then
/// used by only one of them. Exporting is up to the host: text() in the Prometheus text format,
/// or prometheus_collectable() (pgwd/prometheus_collectable.hpp) for a prometheus-cpp Exposer.

#include <memory>
#include <string>

#include "pgwd/export.hpp"

namespace pgwd {

/// Thread-safe: read it from any thread while watchdogs on any thread write to it. Made by
/// make_series_store(); only the library implements it.
class PGWD_EXPORT SeriesStore {
 public:
  virtual ~SeriesStore();
  SeriesStore(const SeriesStore&) = delete;
  SeriesStore& operator=(const SeriesStore&) = delete;

  /// Appends every series to `out` in the Prometheus text exposition format 0.0.4. A scrape
  /// holds the store's lock only to copy its row pointers, never while it writes.
  virtual void append_text(std::string& out) const = 0;
  std::string text() const;

 private:
  SeriesStore() = default;
  friend class Store;
};

/// An empty store (but for pgwatchdog_build_info), for WatchdogOptions::metrics.
PGWD_EXPORT std::shared_ptr<SeriesStore> make_series_store();

}  // namespace pgwd
