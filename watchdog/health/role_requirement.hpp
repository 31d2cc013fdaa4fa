#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pgwd/events.hpp"

namespace pgwd {

/// libpq's `target_session_attrs`, checked by the watchdog itself: at connect (to move on to the
/// next host) and after every probe (a server can change role under an idle connection).
enum class RoleRequirement { any, read_write, read_only, primary, standby, prefer_standby };

/// libpq's names: any, read-write, read-only, primary, standby, prefer-standby.
std::optional<RoleRequirement> parse_role_requirement(std::string_view text);
std::string_view to_string(RoleRequirement requirement);

/// Why `server` does not satisfy `requirement`, or nullopt if it does. `prefer_standby` is
/// satisfied by any server; its preference is applied by trying standbys first. Decided from
/// the ParameterStatus values in_hot_standby and default_transaction_read_only, which PostgreSQL
/// reports since 14; an older server cannot satisfy a role other than `any`.
std::optional<std::string> role_mismatch(RoleRequirement requirement, const ServerInfo& server);

}  // namespace pgwd
