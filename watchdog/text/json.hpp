#pragma once

#include <string>
#include <string_view>

namespace pgwd {

/// `text` as the inside of a JSON string (RFC 8259): `"` and `\` escaped, \n \r \t by name, the
/// other control characters as \u00XX, every other byte as it is (the strings written are UTF-8:
/// target names are checked on the way in, causes and SQLSTATEs are ASCII). The daemon's JSON
/// log lines and its JSON API (`/api/v1/targets`), and the benchmarks' figures, write their
/// strings with it.
inline void append_json_escaped(std::string& out, std::string_view text) {
  constexpr std::string_view kHex = "0123456789abcdef";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[static_cast<unsigned char>(c) >> 4];
          out += kHex[static_cast<unsigned char>(c) & 0xf];
        } else {
          out += c;
        }
    }
  }
}

/// `text` as a JSON string, quotes included.
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  append_json_escaped(out, text);
  out += '"';
}

inline std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace pgwd
