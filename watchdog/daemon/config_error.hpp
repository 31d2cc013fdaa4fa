#pragma once

#include <stdexcept>

namespace pgwd::daemon {

/// A config problem: the message is one line and names the file and line and the key or target.
/// It never contains a password (DSNs are not echoed; libpq's complaints are redacted).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace pgwd::daemon
