#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pg/conninfo.hpp"

namespace pgwd {

/// One entry of a conninfo's host list, tried on its own with its own deadline: libpq walks its
/// hosts inside one PQconnectPoll and cannot skip a host that hangs (docs/design.md §6).
struct HostEntry {
  std::string host;      ///< as written: a name, an address or a socket directory; may be empty
  std::string hostaddr;  ///< as written; may be empty
  std::string port;      ///< may be empty (libpq's default)
  /// A host name to resolve with the loop's resolver before each attempt (libpq's own lookup
  /// blocks).
  std::optional<std::string> resolve;

  std::string label() const;  ///< "host:port" for logs and messages
};

/// Takes host, hostaddr and port out of `conninfo` (PGHOST/PGHOSTADDR/PGPORT standing in where
/// they are absent, as libpq would) and pairs them up by position, libpq's rules: equal lengths,
/// or a single port for every host. Throws InvalidTarget on lists that do not match.
std::vector<HostEntry> take_hosts(Conninfo& conninfo);

}  // namespace pgwd
