#pragma once

/// \file
/// For hosts that remove many targets at once (Watchdog::remove_targets) and want it linear.
///
/// prometheus-cpp 1.0.1 removes a series only by a search of its family, so removing k of n
/// targets' series costs O(k·(n−k)) (5,000 of 10,000 targets: minutes). The linear way is to
/// rebuild a family that loses series: take the staying series out too, in the family's own
/// order, and put them back with their values. A scrape in between would miss them, so a
/// Watchdog rebuilds only a registry whose every scrape waits for it: one exposed through the
/// collectable made here. The daemon's /metrics does the same.

#include <memory>

#include "pgwd/export.hpp"

namespace prometheus {
class Collectable;
class Registry;
}  // namespace prometheus

namespace pgwd {

/// A prometheus::Collectable that collects `registry` and never while a Watchdog on it is
/// rebuilding a family (it waits; a rebuild takes milliseconds per family). Register it with
/// your prometheus::Exposer *instead of* the registry, and keep it alive as long as the Exposer
/// uses it (RegisterCollectable holds it weakly):
///
///     auto metrics = pgwd::guarded_collectable(registry);
///     exposer.RegisterCollectable(metrics);   // not exposer.RegisterCollectable(registry)
///
/// Making it is the host's promise that every scrape of `registry` goes through it from now on
/// (through any such collectable of the same registry); from then on Watchdogs on the registry
/// may rebuild its families in remove_targets. A scrape of the registry itself (its Collect())
/// could then see a staying target's series missing for the time of a rebuild. Thread-safe.
PGWD_EXPORT std::shared_ptr<prometheus::Collectable> guarded_collectable(
    std::shared_ptr<prometheus::Registry> registry);

}  // namespace pgwd
