#pragma once

/// \file
/// Secrets that live outside the config file (docs/configuration.md "Secrets"): `password_file:`
/// and `dsn_file:` name a file whose content is the password or the whole DSN, as a mounted
/// Kubernetes Secret provides it. The files are read whenever the configuration is (start-up, every
/// SIGHUP).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "pg/conninfo.hpp"

namespace pgwd::daemon {

constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

/// The content of a password or DSN file (`key` is "password_file" or "dsn_file", for messages),
/// with its trailing line breaks (LF, CRLF) removed: `echo pw > file` and `kubectl create secret
/// --from-literal` give the same password. Only readability is required (see read_regular_file).
/// Throws ConfigError naming the key and path, never the content: unreadable, not a regular file,
/// larger than 64 KiB, empty (or only line breaks), or holding a NUL byte.
std::string read_secret_file(const std::string& path, std::string_view key);

/// `dsn` (key=value or URI) as libpq parses it, or nullopt when libpq cannot (pgwd::validate says
/// why, with any password redacted). The loader parses each DSN this once and keeps the parsed
/// form while it adds a password and checks the result.
std::optional<Conninfo> parse_dsn(std::string_view dsn);

/// Adds a password_file's `password` to a parsed DSN; its text() is then a `key='value'` conninfo
/// with every other setting kept (a URI included). Throws ConfigError if the DSN sets a password
/// already: two sources for one secret is a mistake to report, not to resolve silently.
void add_password(Conninfo& dsn, const std::string& password);

}  // namespace pgwd::daemon
