#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwd {

// The pieces of the Prometheus text exposition format 0.0.4, as prometheus-cpp 1.0's
// TextSerializer writes them (number formatting `%.16g`, `+Inf`, `-Inf`, `Nan`, label values
// escaped `\\ \" \n`), with one deliberate difference that the format requires and
// TextSerializer omits: `\` and newlines in HELP are escaped too. They append to one string
// with std::to_chars: TextSerializer writes through std::ostream, which at 1,000 targets
// (64,000 series) took 60% of a scrape. Pure functions: thread-safe.

void append_double(std::string& out, double value);
void append_integer(std::string& out, std::uint64_t value);
/// Escapes backslash, double quote and line feed.
void append_label_value(std::string& out, std::string_view value);
/// `name="value"`, the value escaped.
void append_label(std::string& out, std::string_view name, std::string_view value);
/// `# HELP` (if any help) and `# TYPE` lines.
void append_family_head(std::string& out, std::string_view name, std::string_view help,
                        std::string_view type);

/// What every line of one series starts with.
struct SeriesHead {
  std::string_view name;
  std::string_view labels;  // rendered
};

/// `name{labels} value`.
void append_sample(std::string& out, const SeriesHead& series, double value);
/// `name_count` and `name_sum`.
void append_count_and_sum(std::string& out, const SeriesHead& series, std::uint64_t count,
                          double sum);
/// One `name_bucket{labels,le} count` line; `le` rendered by BucketLabels.
void append_bucket(std::string& out, const SeriesHead& series, std::string_view le,
                   std::uint64_t cumulative_count);

/// The `le` labels of one family's histograms, which share their bucket bounds: formatting a
/// double takes longer than copying it, and a family has thousands of buckets.
class BucketLabels {
 public:
  std::string_view of(std::size_t bucket, double upper_bound);

 private:
  std::vector<std::pair<double, std::string>> labels_;
};

}  // namespace pgwd
