#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgwd {

/// Every password a conninfo could carry, found leniently so that it also works on a conninfo
/// libpq refused to parse: `password=...` (quoted or not) and a URI's `user:secret@` and
/// `?password=` / `&password=`, raw and percent-decoded.
std::vector<std::string> passwords_in(std::string_view dsn);

/// `text` with every password found in `dsn` replaced by `***`. libpq quotes fragments of a
/// conninfo it cannot parse, and a fragment may be the password.
std::string redact_secrets(std::string_view text, std::string_view dsn);

}  // namespace pgwd
