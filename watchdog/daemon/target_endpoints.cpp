#include "daemon/target_endpoints.hpp"

#include <fmt/format.h>

#include <array>

#include "text/json.hpp"
#include "daemon/target_text.hpp"

namespace pgwd::daemon {
namespace {

constexpr std::string_view kPrefix = "/targets/";
constexpr std::string_view kText = "text/plain; charset=utf-8";

constexpr std::array kChecks = {std::pair{std::string_view("primary"), TargetCheck::primary},
                                std::pair{std::string_view("replica"), TargetCheck::replica},
                                std::pair{std::string_view("up"), TargetCheck::up}};

// Why a target that is not up is not: its outage and what ended it, or that it has not tried yet.
std::string not_up_text(const TargetStatus& t, std::chrono::system_clock::time_point now_wall,
                        std::chrono::steady_clock::time_point now) {
  if (t.state() == TargetState::pending) return "pending: the first connect attempt has not ended";
  std::string text = "down";
  if (const auto down_for = outage(t, now)) text += " for " + duration_text(*down_for);
  const auto disconnect = last_disconnect_text(t, now_wall);
  const auto failure = last_connect_failure_text(t, now_wall);
  if (disconnect) text += "; last disconnect: " + *disconnect;
  if (failure) text += "; last connect failure: " + *failure;
  return text;
}

HttpReply reply(unsigned status, std::string line) {
  line += '\n';
  return {status, std::string(kText), std::move(line)};
}

HttpReply role_check(const TargetStatus& t, ServerRole wanted, std::string_view name,
                     std::chrono::system_clock::time_point now_wall,
                     std::chrono::steady_clock::time_point now) {
  const std::string_view negated = wanted == ServerRole::primary ? "not primary" : "not a replica";
  if (!t.up()) return reply(503, fmt::format("{}: {}", negated, not_up_text(t, now_wall, now)));
  const ServerRole role = t.role();
  if (role == wanted)
    return reply(200, fmt::format("{}: up ({}), in_hot_standby={}", name, connections_text(t),
                                  t.in_hot_standby));
  if (role == ServerRole::unknown)
    return reply(503, fmt::format("{}: role unknown: the server has not reported in_hot_standby "
                                  "(yet, or at all before PostgreSQL 14)",
                                  negated));
  return reply(503, fmt::format("{}: the server is {} (in_hot_standby={})", negated,
                                role == ServerRole::primary ? "the primary" : "a standby",
                                t.in_hot_standby));
}

std::string seconds(std::chrono::nanoseconds elapsed) {
  return fmt::format("{:.3f}", std::chrono::duration<double>(elapsed).count());
}

// {"cause": ..., "sqlstate": ..., "at": ..., "seconds_ago": ...}, or null.
void append_event(std::string& out, const std::optional<Cause>& cause, std::string_view sqlstate,
                  std::chrono::system_clock::time_point at,
                  std::chrono::system_clock::time_point now_wall, bool with_sqlstate) {
  if (!cause) {
    out += "null";
    return;
  }
  out += "{\"cause\":";
  append_json_string(out, to_string(*cause));
  if (with_sqlstate) {
    out += ",\"sqlstate\":";
    if (sqlstate.empty())
      out += "null";
    else
      append_json_string(out, sqlstate);
  }
  out += ",\"at\":";
  append_json_string(out, iso_utc_text(at));
  out += ",\"seconds_ago\":" + seconds(now_wall - at) + "}";
}

constexpr std::array kStates = {ConnectionState::healthy,    ConnectionState::probing,
                                ConnectionState::inspecting, ConnectionState::connecting,
                                ConnectionState::resolving,  ConnectionState::waiting,
                                ConnectionState::backoff,    ConnectionState::down,
                                ConnectionState::stopped};

}  // namespace

std::optional<TargetPath> parse_target_path(std::string_view path) {
  if (!path.starts_with(kPrefix)) return std::nullopt;
  const std::string_view rest = path.substr(kPrefix.size());
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view check = rest.substr(slash + 1);
  for (const auto& [word, kind] : kChecks)
    if (check == word) return TargetPath{std::string(rest.substr(0, slash)), kind};
  return std::nullopt;
}

HttpReply answer_target_check(const std::optional<TargetStatus>& target, const TargetPath& path,
                              std::chrono::system_clock::time_point now_wall,
                              std::chrono::steady_clock::time_point now) {
  if (!target)
    return reply(404, fmt::format("no target named {} (GET /api/v1/targets lists them)",
                                  json_string(path.name)));
  const TargetStatus& t = *target;
  switch (path.check) {
    case TargetCheck::up:
      if (t.up()) return reply(200, "up: " + connections_text(t));
      return reply(503, not_up_text(t, now_wall, now));
    case TargetCheck::primary:
      return role_check(t, ServerRole::primary, "primary", now_wall, now);
    case TargetCheck::replica:
      return role_check(t, ServerRole::standby, "replica", now_wall, now);
  }
  return reply(500, "internal error");
}

std::string render_targets_json(const std::vector<TargetStatus>& targets,
                                std::chrono::system_clock::time_point now_wall,
                                std::chrono::steady_clock::time_point now) {
  std::string out;
  out.reserve(64 + targets.size() * 400);
  out += "{\"as_of\":";
  append_json_string(out, iso_utc_text(now_wall));
  out += ",\"targets\":[";
  bool first = true;
  for (const TargetStatus& t : targets) {
    if (!first) out += ',';
    first = false;
    out += "\n{\"name\":";
    append_json_string(out, t.name);
    out += ",\"state\":";
    append_json_string(out, to_string(t.state()));
    out += ",\"role\":";
    append_json_string(out, to_string(t.role()));
    out += ",\"in_hot_standby\":";
    if (t.in_hot_standby.empty())
      out += "null";
    else
      append_json_string(out, t.in_hot_standby);
    out += fmt::format(",\"connections\":{{\"total\":{}", t.connections.size());
    for (const ConnectionState state : kStates)
      out += fmt::format(",\"{}\":{}", to_string(state), t.count(state));
    out += "},\"outage_seconds\":";
    const auto down_for = outage(t, now);
    out += down_for ? seconds(*down_for) : "null";
    out += ",\"last_disconnect\":";
    append_event(out, t.last_disconnect, t.last_disconnect_sqlstate, t.last_disconnect_at,
                 now_wall, true);
    out += ",\"last_connect_failure\":";
    append_event(out, t.last_connect_failure, {}, t.last_connect_failure_at, now_wall, false);
    out += '}';
  }
  out += "\n]}\n";
  return out;
}

}  // namespace pgwd::daemon
