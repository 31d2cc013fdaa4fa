#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

namespace pgwd::daemon {

/// Appends `families` to `out` in the Prometheus text exposition format 0.0.4, the bytes that
/// prometheus-cpp 1.0's TextSerializer writes (same order, number formatting `%.16g`, `+Inf`,
/// `-Inf`, `Nan`, label values escaped `\\ \" \n`), with one deliberate difference that the
/// format requires and TextSerializer omits: `\` and newlines in HELP are escaped too.
///
/// Why not TextSerializer: it writes through std::ostream, and at 1,000 targets (64,000 series,
/// 3.8 MiB) that took 60% of a scrape (docs/design.md §12); this writes into one string with
/// std::to_chars, several times faster. Pure function: thread-safe.
void append_text_exposition(const std::vector<prometheus::MetricFamily>& families,
                            std::string& out);

/// Appends what append_text_exposition(registry.Collect(), out) would, byte for byte, without
/// Collect()'s copies of every series: read straight from the registry's families, holding the
/// same mutexes in the same order as Collect() (the registry's throughout, each family's while
/// it is written, each histogram's while it is read). See prometheus_internals.hpp for why and
/// how. Thread-safe as Collect() is.
void append_registry_text(const prometheus::Registry& registry, std::string& out);

}  // namespace pgwd::daemon
