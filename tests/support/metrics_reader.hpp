#pragma once

#include <map>
#include <memory>
#include <string>

#include "pgwd/series_store.hpp"

namespace pgwd::testing {

/// Reads one sample from a store the way a host's scrape would (through
/// pgwd::prometheus_collectable), by metric name and labels. For a histogram, `name` may end in
/// _count or _sum. Returns -1 if no such series exists, so a missing series never passes for a
/// zero.
double metric_value(const std::shared_ptr<const SeriesStore>& store, const std::string& name,
                    const std::map<std::string, std::string>& labels = {});

}  // namespace pgwd::testing
