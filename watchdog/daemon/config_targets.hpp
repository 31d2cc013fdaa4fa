#pragma once

/// \file
/// The `defaults:` and `targets:` sections of the config file: each target's keys read through
/// their declarations (config_keys.hpp), its DSN put together from `dsn` or `dsn_file` and
/// `password_file` (parsed by libpq once, and kept parsed while it is completed and checked),
/// validated by the library, and the limits over all targets checked.

#include <map>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/yaml_values.hpp"

namespace pgwd::daemon {

/// `defaults:`, with its password_file read once for all the targets that inherit it.
struct TargetDefaults {
  TargetOptions options;
  std::string password_file;
  std::string password;  ///< the file's content; never printed
};

/// A ConfigError at the key's line for a bad key or value, or a password_file that cannot be read.
TargetDefaults read_defaults(const ValueReader& reader, const Entry& section);

/// The targets in file order, each `defaults` with its own keys applied over it, validated by
/// the library's prepare_target, with unique names. `sources` gets an entry for each target with
/// a password_file or dsn_file, `prepared` one for each target. A target with `patroni:` is a
/// cluster: it goes to `clusters` instead (and has no entry in `prepared`), its DSN without a
/// host or port (each member brings its own). Names are unique across both. Throws ConfigError
/// at the line of the target's name (or its key).
std::vector<TargetOptions> read_targets(const ValueReader& reader, const Entry& section,
                                        const TargetDefaults& defaults,
                                        std::map<std::string, SecretSources, std::less<>>& sources,
                                        PreparedTargets& prepared,
                                        std::vector<PatroniCluster>& clusters);

}  // namespace pgwd::daemon
