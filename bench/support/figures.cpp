#include "support/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <string>

#include "text/json.hpp"

namespace pgwd::bench {
namespace {

std::mutex output_mutex;
std::string bench_name = "unnamed";


/// JSON has no NaN or infinity: they become null, which the report shows as "n/a".
std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

std::string head(std::string_view figure) {
  return "{\"bench\":" + json_string(bench_name) + ",\"figure\":" + json_string(figure);
}

void write_line(const std::string& line) {
  const std::lock_guard lock(output_mutex);
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string tail(std::string_view unit, std::string_view text) {
  std::string out = ",\"unit\":" + json_string(unit);
  if (!text.empty()) out += ",\"note\":" + json_string(text);
  return out + "}";
}

}  // namespace

void set_bench_name(std::string_view name) { bench_name = name; }

void emit_value(std::string_view figure, double value, std::string_view unit,
                std::string_view text) {
  write_line(head(figure) + ",\"value\":" + json_number(value) + tail(unit, text));
}

void emit_samples(std::string_view figure, const std::vector<double>& samples,
                  std::string_view unit, std::string_view text) {
  std::string list = "[";
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (i != 0) list += ',';
    list += json_number(samples[i]);
  }
  list += "]";
  write_line(head(figure) + ",\"samples\":" + list + tail(unit, text));
  const std::string name(figure);
  emit_value(name + ".p50", percentile(samples, 50), unit);
  emit_value(name + ".p90", percentile(samples, 90), unit);
  emit_value(name + ".p99", percentile(samples, 99), unit);
  emit_value(name + ".max", percentile(samples, 100), unit);
}

void emit_skipped(std::string_view figure, std::string_view reason) {
  write_line(head(figure) + ",\"skipped\":" + json_string(reason) + "}");
  note(std::string("skipped ") + std::string(figure) + ": " + std::string(reason));
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(samples.begin(), samples.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(samples.size()));
  const auto index = static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(samples.size()))) - 1;
  return samples[index];
}

void note(std::string_view text) {
  const std::lock_guard lock(output_mutex);
  std::fprintf(stderr, "[bench %s] %.*s\n", bench_name.c_str(), static_cast<int>(text.size()),
               text.data());
}

}  // namespace pgwd::bench
