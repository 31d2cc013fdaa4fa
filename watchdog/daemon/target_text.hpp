#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "daemon/status_board.hpp"

namespace pgwd::daemon {

/// The words a target's snapshot (TargetStatus) is told in, written once for the status page
/// and the health checks of /targets/<name>/...: both say the same thing the same way.

/// "850ms", "42s", "3m05s", "2h10m", "1d03h".
std::string duration_text(std::chrono::nanoseconds elapsed);
/// "2026-11-21 06:17:34 UTC".
std::string utc_text(std::chrono::system_clock::time_point at);
/// "2026-11-21T06:17:34.875Z" (RFC 3339, for JSON).
std::string iso_utc_text(std::chrono::system_clock::time_point at);
/// Connections by state, the up states first: "2 healthy, 1 backoff".
std::string connections_text(const TargetStatus& target);
/// The current outage's length, or nullopt while the target is up (or has no start yet).
std::optional<std::chrono::nanoseconds> outage(const TargetStatus& target,
                                               std::chrono::steady_clock::time_point now);
/// "server_shutdown (57P01) at 2026-... UTC, 12s ago", or nullopt if no connection was lost yet.
std::optional<std::string> last_disconnect_text(const TargetStatus& target,
                                                std::chrono::system_clock::time_point now_wall);
/// "connect_failed, 3s ago", or nullopt if no connect attempt failed yet.
std::optional<std::string> last_connect_failure_text(
    const TargetStatus& target, std::chrono::system_clock::time_point now_wall);

}  // namespace pgwd::daemon
