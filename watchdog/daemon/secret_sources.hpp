#pragma once

/// \file
/// Secrets that live outside the config file (docs/configuration.md "Secrets"): `password_file:`
/// and `dsn_file:` name a file whose content is the password or the whole DSN, as a mounted
/// Kubernetes Secret provides it. The files are read whenever the configuration is (start-up, every
/// SIGHUP).

#include <cstddef>
#include <string>
#include <string_view>

namespace pgwd::daemon {

constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

/// The content of a password or DSN file (`key` is "password_file" or "dsn_file", for messages),
/// with its trailing line breaks (LF, CRLF) removed: `echo pw > file` and `kubectl create secret
/// --from-literal` give the same password. Only readability is required (see read_regular_file).
/// Throws ConfigError naming the key and path, never the content: unreadable, not a regular file,
/// larger than 64 KiB, empty (or only line breaks), or holding a NUL byte.
std::string read_secret_file(const std::string& path, std::string_view key);

/// Whether `conninfo` (key=value or URI) sets a password. False when libpq cannot parse it (the
/// caller's validation reports that).
bool sets_password(std::string_view conninfo);

/// Whether libpq parses `conninfo` (key=value or URI).
bool parses_as_conninfo(std::string_view conninfo);

/// `conninfo` with `password` added, as `key='value'` pairs (a URI is rewritten into that form by
/// libpq's own parser, so every other setting is kept). Throws ConfigError if the conninfo cannot
/// be parsed or already sets a password (two sources for one secret is a mistake to report, not
/// to resolve silently).
std::string conninfo_with_password(std::string_view conninfo, const std::string& password);

}  // namespace pgwd::daemon
