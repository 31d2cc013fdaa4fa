#pragma once

/// \file
/// Durations as users write them in the config file and on the command line: `250ms`, `10s`,
/// `1m`, `2h`. A bare number other than 0 is refused: `5` could mean seconds or milliseconds.

#include <chrono>
#include <string>
#include <string_view>

namespace pgwd::daemon {

/// A whole number followed by `ms`, `s`, `m` or `h`, or a bare `0`. No sign, no fraction, no
/// space. Throws std::invalid_argument whose one-line message quotes the text, e.g.
/// "bad duration '5 seconds' (use a number with ms, s, m or h: 250ms, 10s, 1m)", or
/// std::out_of_range ("duration '...' is too long") when it does not fit in milliseconds. Which
/// durations make sense is the caller's business: each config key has its own range.
std::chrono::milliseconds parse_duration(std::string_view text);

/// The shortest form parse_duration reads back exactly: 0s, 250ms, 1500ms, 90s, 1m, 2h.
/// A negative duration (never parsed, but TargetOptions can hold one) gets a leading '-'.
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace pgwd::daemon
