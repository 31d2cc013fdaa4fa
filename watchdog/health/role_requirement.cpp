#include "health/role_requirement.hpp"

#include <fmt/format.h>

namespace pgwd {

std::optional<RoleRequirement> parse_role_requirement(std::string_view text) {
  if (text == "any") return RoleRequirement::any;
  if (text == "read-write") return RoleRequirement::read_write;
  if (text == "read-only") return RoleRequirement::read_only;
  if (text == "primary") return RoleRequirement::primary;
  if (text == "standby") return RoleRequirement::standby;
  if (text == "prefer-standby") return RoleRequirement::prefer_standby;
  return std::nullopt;
}

std::string_view to_string(RoleRequirement requirement) {
  switch (requirement) {
    case RoleRequirement::any:
      return "any";
    case RoleRequirement::read_write:
      return "read-write";
    case RoleRequirement::read_only:
      return "read-only";
    case RoleRequirement::primary:
      return "primary";
    case RoleRequirement::standby:
      return "standby";
    case RoleRequirement::prefer_standby:
      return "prefer-standby";
  }
  return "any";
}

std::optional<std::string> role_mismatch(RoleRequirement requirement, const ServerInfo& server) {
  if (requirement == RoleRequirement::any || requirement == RoleRequirement::prefer_standby)
    return std::nullopt;
  if (server.in_hot_standby.empty() || server.default_transaction_read_only.empty())
    return fmt::format(
        "target_session_attrs={} needs PostgreSQL 14 or later (in_hot_standby is not reported)",
        to_string(requirement));
  const bool standby = server.in_hot_standby == "on";
  const bool read_only = standby || server.default_transaction_read_only == "on";
  bool ok = true;
  switch (requirement) {
    case RoleRequirement::read_write:
      ok = !read_only;
      break;
    case RoleRequirement::read_only:
      ok = read_only;
      break;
    case RoleRequirement::primary:
      ok = !standby;
      break;
    case RoleRequirement::standby:
      ok = standby;
      break;
    default:
      break;
  }
  if (ok) return std::nullopt;
  return fmt::format(
      "server is {} (in_hot_standby={}, default_transaction_read_only={}) but "
      "target_session_attrs={}",
      standby     ? "a standby"
      : read_only ? "read-only"
                  : "a read-write primary",
      server.in_hot_standby, server.default_transaction_read_only, to_string(requirement));
}

}  // namespace pgwd
