#pragma once

/// \file
/// The one output format of every benchmark: JSON lines on stdout, one figure per line, which
/// scripts/bench gathers into bench/results/latest.json (bench/report.py). Progress goes to
/// stderr (note()), so stdout stays machine-readable.
///
///   {"bench":"detection","figure":"terminate.embedded.p50","value":452.1,"unit":"us"}
///   {"bench":"detection","figure":"terminate.embedded","samples":[...],"unit":"us"}
///   {"bench":"scale","figure":"sigterm_exit.100000","skipped":"needs 100k sockets"}
///
/// A figure that could not be measured is written as skipped with the reason; the report
/// counts a benchmark that wrote nothing (or failed) as a failure.

#include <string>
#include <string_view>
#include <vector>

namespace pgwd::bench {

/// Names the benchmark in every line written afterwards. Call once, first thing in main().
void set_bench_name(std::string_view name);

void emit_value(std::string_view figure, double value, std::string_view unit,
                std::string_view note = {});
/// All samples, and their p50/p90/p99/max (emitted as figure.p50 etc., same unit).
void emit_samples(std::string_view figure, const std::vector<double>& samples,
                  std::string_view unit, std::string_view note = {});
void emit_skipped(std::string_view figure, std::string_view reason);

/// Nearest-rank percentile (0 < p <= 100) of unsorted samples; NaN for none.
double percentile(std::vector<double> samples, double p);

/// A progress line on stderr, prefixed with the benchmark's name.
void note(std::string_view text);

}  // namespace pgwd::bench
