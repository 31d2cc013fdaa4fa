#pragma once

/// \file
/// A Watchdog's metrics for a host that exposes prometheus-cpp: register the collectable made
/// here with your prometheus::Exposer (or collect it however you scrape), and keep it alive as
/// long as the Exposer uses it (RegisterCollectable holds it weakly):
///
///     auto metrics = pgwd::prometheus_collectable(watchdog.metrics());
///     exposer.RegisterCollectable(metrics);

#include <memory>

#include "pgwd/export.hpp"
#include "pgwd/series_store.hpp"

namespace prometheus {
class Collectable;
}

namespace pgwd {

/// A prometheus::Collectable whose Collect() returns the store's series as they are at that
/// moment: the same families, series and values that SeriesStore::text() writes. Holds the store.
/// Throws std::invalid_argument if `store` is null. Thread-safe.
PGWD_EXPORT std::shared_ptr<prometheus::Collectable> prometheus_collectable(
    std::shared_ptr<const SeriesStore> store);

}  // namespace pgwd
