#pragma once

#include <cstddef>
#include <string_view>

namespace pgwd {

/// One code point read from UTF-8 text.
struct Utf8CodePoint {
  char32_t code_point = 0;
  std::size_t length = 0;  ///< bytes it took; 0: not a valid sequence (overlong, surrogate,
                           ///< beyond U+10FFFF, truncated)
};

/// Decodes the code point that starts at byte `at` of `text` (at < text.size()), strictly:
/// anything but well-formed UTF-8 gives length 0. Used where names and config text are checked
/// before they reach a log, a metric label or yaml-cpp.
inline Utf8CodePoint decode_utf8(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  if (lead < 0x80) return {lead, 1};
  std::size_t length = 0;
  char32_t code_point = 0;
  char32_t smallest = 0;
  if ((lead & 0xe0) == 0xc0) {
    length = 2, code_point = lead & 0x1fU, smallest = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, code_point = lead & 0x0fU, smallest = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, code_point = lead & 0x07U, smallest = 0x10000;
  } else {
    return {};
  }
  if (text.size() - at < length) return {};
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xc0) != 0x80) return {};
    code_point = (code_point << 6) | (byte(at + i) & 0x3fU);
  }
  if (code_point < smallest || code_point > 0x10ffff ||
      (code_point >= 0xd800 && code_point <= 0xdfff))
    return {};
  return {code_point, length};
}

}  // namespace pgwd
