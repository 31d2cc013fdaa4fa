#pragma once

/// \file
/// `${NAME}` references to environment variables in the config file's values (docs/configuration.md
/// "Secrets").
///
/// The syntax, scanned left to right:
///   - `${NAME}` is replaced by the value of the environment variable NAME, where NAME is
///     `[A-Za-z_][A-Za-z0-9_]*`. A variable that is not set is an error (never silently ""); one
///     set to the empty string gives "".
///   - `$${` stands for a literal `${` (the escape).
///   - every other `$` is itself: `$1`, `$$ ... $$` (PostgreSQL dollar quoting in a probe query)
///     and a `$` inside a password need no escaping.
///   - `${` that does not continue as a NAME and `}` is an error.
/// Expanded text is not expanded again: a variable's value is taken as it is.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pgwd::daemon {

/// Looks a variable up: its value, or nullopt if it is not set.
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (getenv).
std::optional<std::string> process_environment(const std::string& name);

/// `text` with its references replaced. Throws std::invalid_argument whose message names the
/// variable ("environment variable 'NAME' is not set") or the malformed reference; never a value.
std::string expand_env_references(std::string_view text, const EnvironmentLookup& lookup);

/// The inverse for printing: every `${` becomes `$${`, so that expanding the result gives `text`.
std::string escape_env_references(std::string_view text);

}  // namespace pgwd::daemon
