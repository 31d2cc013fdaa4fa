#include "pg/server_error.hpp"

#include <regex>

namespace pgwd {

bool ends_session(std::string_view sqlstate) noexcept {
  return sqlstate.size() == 5 && sqlstate.substr(0, 3) == "57P";
}

std::optional<Cause> cause_from_sqlstate(std::string_view s) noexcept {
  if (s == "57P01") return Cause::server_shutdown;  // admin command, smart or fast shutdown
  if (s == "57P02") return Cause::server_crash;     // crash of another server process
  if (s == "57P03") return Cause::cannot_connect_now;               // cannot connect now
  if (s == "57P05") return Cause::idle_session_timeout;
  if (s == "28P01" || s == "28000") return Cause::auth_failed;
  if (s == "3D000") return Cause::database_missing;
  if (s == "53300") return Cause::too_many_clients;
  return std::nullopt;
}

std::optional<Cause> pooler_error(std::string_view sqlstate, std::string_view message) noexcept {
  if (sqlstate != "08P01") return std::nullopt;  // send_pooler_error()'s code
  const auto says = [&](std::string_view text) {
    return message.find(text) != std::string_view::npos;
  };
  if (says("server conn crashed?")) return Cause::pooler_server_lost;
  if (says("server login has been failing")) return Cause::pooler_login_failing;
  if (says("query_wait_timeout")) return Cause::pooler_queue_timeout;
  return std::nullopt;
}

std::optional<Cause> session_ending(std::string_view severity, std::string_view sqlstate,
                                    std::string_view message) noexcept {
  // PgBouncer closes the client after each of these, whatever the severity says.
  if (const auto pooler = pooler_error(sqlstate, message)) return pooler;
  const bool fatal = severity == "FATAL" || severity == "PANIC";
  if (!ends_session(sqlstate) && !fatal) return std::nullopt;
  if (sqlstate == "57P01") {
    // quickdie() of PostgreSQL 14+: a WARNING, not an error, for `pg_ctl stop -m immediate`.
    if (!fatal) return Cause::immediate_shutdown;
    // secure_read() when the postmaster is gone: the same code as a planned stop.
    if (message.find("unexpected postmaster exit") != std::string_view::npos)
      return Cause::server_crash;
  }
  return cause_from_sqlstate(sqlstate).value_or(ends_session(sqlstate) ? Cause::server_shutdown
                                                                       : Cause::server_error);
}

std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

ServerError parse_connection_error(std::string_view text) {
  // Keep the lines that carry the error, drop the verbose detail lines libpq adds.
  std::string kept;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    if (!line.starts_with("LOCATION:") && !line.starts_with("DETAIL:") &&
        !line.starts_with("HINT:")) {
      kept += line;
      kept += '\n';
    }
    start = end + 1;
  }
  ServerError error;
  static const std::regex coded(R"(([A-Z]+):  ([0-9A-Z]{5}): )");
  std::smatch m;
  if (std::regex_search(kept, m, coded)) {
    error.sqlstate = m[2].str();
    kept = m.prefix().str() + m[1].str() + ":  " + m.suffix().str();
  }
  error.message = one_line(kept);
  return error;
}

std::string severity_of(const PGresult* result) {
  const std::string_view severity = error_field(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  return std::string(severity.empty() ? error_field(result, PG_DIAG_SEVERITY) : severity);
}

const char* error_field(const PGresult* result, int code) noexcept {
  const char* value = PQresultErrorField(result, code);
  return value ? value : "";
}

}  // namespace pgwd
