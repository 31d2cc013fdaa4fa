#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwd {

/// NULL-terminated keyword/value arrays for PQconnectStartParams. Points into the Conninfo it
/// came from: valid while that Conninfo lives unchanged.
struct ConnectParams {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
};

/// A libpq conninfo (`key=value` or URI) parsed by libpq itself: the keywords that were set, in
/// libpq's order, which the watchdog may then complete with its own defaults.
class Conninfo {
 public:
  /// Throws InvalidTarget; the message is libpq's, with any password taken out.
  static Conninfo parse(std::string_view dsn);

  std::optional<std::string> get(std::string_view key) const;
  void set(std::string_view key, std::string value);
  /// Sets `key` only where the user did not.
  void set_default(std::string_view key, std::string value);
  void erase(std::string_view key);

  ConnectParams params() const;
  /// `key='value' ...` with the password shown as ***: safe to print.
  std::string redacted() const;
  /// `key='value' ...` with every value, the password included: a conninfo libpq parses back to
  /// the same settings. Never for printing.
  std::string text() const;

 private:
  std::string render(bool hide_password) const;
  std::vector<std::pair<std::string, std::string>> entries_;
};

}  // namespace pgwd
