#include "daemon/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace pgwd::daemon {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t milliseconds;
};

// "ms" before "m" and "s": the longest suffix must win.
constexpr std::array<Unit, 4> kUnits{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}}};

// The text comes from a config file or the command line: keep the message on one line and
// short, whatever the user typed.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 60;
  std::string shown;
  for (char c : text.substr(0, kMaxShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      shown += "\\n";
    } else if (c == '\t') {
      shown += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      shown += "\\x";
      shown += kHex[byte >> 4];
      shown += kHex[byte & 0xf];
    } else {
      shown += c;
    }
  }
  if (text.size() > kMaxShown) shown += "...";
  return shown;
}

[[noreturn]] void bad_duration(std::string_view text) {
  throw std::invalid_argument("bad duration '" + printable(text) +
                              "' (use a number with ms, s, m or h: 250ms, 10s, 1m)");
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds::zero();

  const auto digits_end = text.find_first_not_of("0123456789");
  if (digits_end == 0 || digits_end == std::string_view::npos) bad_duration(text);
  const std::string_view digits = text.substr(0, digits_end);
  const std::string_view suffix = text.substr(digits_end);

  for (const Unit& unit : kUnits) {
    if (suffix != unit.suffix) continue;
    std::int64_t count = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
    if (error != std::errc() || end != digits.data() + digits.size() ||
        count > std::numeric_limits<std::int64_t>::max() / unit.milliseconds)
      throw std::out_of_range("duration '" + printable(text) + "' is too long");
    return std::chrono::milliseconds(count * unit.milliseconds);
  }
  bad_duration(text);
}

std::string format_duration(std::chrono::milliseconds duration) {
  if (duration == std::chrono::milliseconds::zero()) return "0s";
  // Built from the magnitude so that the most negative value cannot overflow when negated.
  const bool negative = duration.count() < 0;
  const auto magnitude = negative ? -static_cast<std::uint64_t>(duration.count())
                                  : static_cast<std::uint64_t>(duration.count());
  for (auto unit = kUnits.rbegin(); unit != kUnits.rend(); ++unit) {
    const auto factor = static_cast<std::uint64_t>(unit->milliseconds);
    if (magnitude % factor == 0)
      return (negative ? "-" : "") + std::to_string(magnitude / factor) + std::string(unit->suffix);
  }
  return {};  // unreachable: every count is a whole number of milliseconds
}

}  // namespace pgwd::daemon
