#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/http_server.hpp"
#include "daemon/status_board.hpp"

namespace pgwd::daemon {

/// The endpoints a proxy routes by (docs/daemon.md "Target endpoints"): per target,
/// `/targets/<name>/primary`, `/targets/<name>/replica` and `/targets/<name>/up`, 200 or 503
/// with one line of text saying why; and `/api/v1/targets`, every target as JSON. They answer
/// from a StatusBoard copy (the watchdog's own view, kept up to date by its events): a request
/// never reaches a database, so a proxy may check every second, and a request storm costs the
/// databases nothing.

enum class TargetCheck {
  primary,  ///< up, and the server says in_hot_standby=off
  replica,  ///< up, and the server says in_hot_standby=on
  up,       ///< a connection is up, whatever the role
};

struct TargetPath {
  std::string name;
  TargetCheck check = TargetCheck::up;
};

/// `/targets/<name>/<check>` as a (percent-decoded) path: the check is the last segment, the name
/// everything between `/targets/` and it, so a name holding `/` works sent either way. nullopt
/// for any other path, an empty name or an unknown check.
std::optional<TargetPath> parse_target_path(std::string_view path);

/// The answer to a check of `target` (nullopt: no target of the path's name, 404). 200 or 503
/// with a one-line text body; never cached (Cache-Control: no-store is on every reply).
HttpReply answer_target_check(const std::optional<TargetStatus>& target, const TargetPath& path,
                              std::chrono::system_clock::time_point now_wall,
                              std::chrono::steady_clock::time_point now);

/// `/api/v1/targets`: {"as_of": ..., "targets": [...]}, in configuration order; each with its
/// name, state, role, in_hot_standby, connections by state, outage_seconds, last_disconnect and
/// last_connect_failure (null when none). docs/daemon.md shows one.
std::string render_targets_json(const std::vector<TargetStatus>& targets,
                                std::chrono::system_clock::time_point now_wall,
                                std::chrono::steady_clock::time_point now);

}  // namespace pgwd::daemon
