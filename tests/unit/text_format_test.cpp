// The pieces of the text format (metrics/text_format.hpp) against prometheus-cpp's own
// TextSerializer, byte for byte: numbers of every kind and odd label values. HELP is where the
// two differ on purpose.
#include "metrics/text_format.hpp"

#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

namespace {

/// One gauge family `v` holding `values` (label i), as TextSerializer writes it and as the
/// pieces do.
void compare(const std::vector<double>& values, const std::vector<std::string>& labels) {
  prometheus::MetricFamily family;
  family.name = "v";
  family.type = prometheus::MetricType::Gauge;
  std::string ours = "# TYPE v gauge\n";
  for (std::size_t i = 0; i < values.size(); ++i) {
    prometheus::ClientMetric metric;
    metric.label.push_back({"i", labels[i]});
    metric.gauge.value = values[i];
    family.metric.push_back(metric);
    std::string rendered;
    pgwd::append_label(rendered, "i", labels[i]);
    pgwd::append_sample(ours, {"v", rendered}, values[i]);
  }
  CHECK(ours == prometheus::TextSerializer().Serialize({family}));
}

}  // namespace

TEST_CASE("text format: numbers are formatted as TextSerializer's %.16g on many values") {
  std::vector<double> values = {0,
                                -0.0,
                                1,
                                -1,
                                1e15 - 1,
                                1e15,
                                1e15 + 1,
                                1e16,
                                1e16 + 2,
                                1e17,
                                1e-4,
                                1e-5,
                                0.1 + 0.2,
                                123.456,
                                2.5e-300,
                                5e-324,
                                9007199254740993.0,
                                std::numeric_limits<double>::quiet_NaN(),
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::denorm_min(),
                                static_cast<double>(std::numeric_limits<std::int64_t>::max())};
  std::mt19937_64 random(20261201);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = random();
    double any;
    std::memcpy(&any, &bits, sizeof any);
    values.push_back(any);  // any bit pattern at all
    values.push_back(std::ldexp(static_cast<double>(random() % 1000000), -(i % 40)));  // fractions
    values.push_back(static_cast<double>(random() >> (i % 64)));  // integers of every size
  }
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < values.size(); ++i) labels.push_back(std::to_string(i));
  compare(values, labels);
}

TEST_CASE("text format: label values are escaped as TextSerializer escapes them") {
  const std::vector<std::string> labels = {"back\\slash", "a \"quoted\" word", "two\nlines", "",
                                           "ünïcödé ✓",   "\\\"\n\\n",         "plain"};
  compare(std::vector<double>(labels.size(), 1), labels);
}

TEST_CASE("text format: HELP escapes backslash and line feed as the text format requires") {
  // TextSerializer writes HELP raw, which breaks the line for a help text with a line feed: here
  // the two differ on purpose. pgwatchdog's own help texts have neither character.
  std::string out = "kept\n";
  pgwd::append_family_head(out, "help_escaped", "a \\ backslash, a \"quote\" and\na line feed",
                           "counter");
  CHECK(out ==
        "kept\n# HELP help_escaped a \\\\ backslash, a \"quote\" and\\na line feed\n"
        "# TYPE help_escaped counter\n");
  out.clear();
  pgwd::append_family_head(out, "no_help", "", "gauge");
  CHECK(out == "# TYPE no_help gauge\n");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
