#pragma once

#include <prometheus/registry.h>

#include <map>
#include <string>

namespace pgwd::testing {

/// Reads one sample from a registry the way a scrape would (Collect), by metric name and labels.
/// For a histogram, `name` may end in _count or _sum. Returns -1 if no such series exists, so a
/// missing series never passes for a zero.
double metric_value(const prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels = {});

}  // namespace pgwd::testing
