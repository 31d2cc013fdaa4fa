#include "target_settings.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>

#include <chrono>

#include "pg/handles.hpp"
#include "pg/secrets.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd {
namespace {

using std::chrono::milliseconds;

long long ceil_seconds(milliseconds d) {
  return (d.count() + 999) / 1000;
}

bool is_ip_literal(const std::string& host) {
  in6_addr buffer{};
  return inet_pton(AF_INET, host.c_str(), &buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buffer) == 1;
}

// libpq falls back to PGHOST when the conninfo names no host; that host needs resolving too.
std::optional<std::string> environment_default(const char* keyword) {
  const ConninfoOptionsPtr defaults(PQconndefaults());
  for (const PQconninfoOption* o = defaults.get(); o && o->keyword; ++o)
    if (std::string_view(o->keyword) == keyword && o->val && *o->val) return std::string(o->val);
  return std::nullopt;
}

std::string quote_identifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + '"';
}

void check(bool ok, const std::string& target, std::string_view what) {
  if (!ok) throw InvalidTarget(fmt::format("target '{}': {}", target, what));
}

}  // namespace

TargetSettings prepare_target(const TargetOptions& o) {
  if (o.name.empty()) throw InvalidTarget("a target needs a name");
  for (char c : o.name)
    check(static_cast<unsigned char>(c) >= 0x20, o.name, "name contains a control character");
  check(o.connections >= 1, o.name,
        fmt::format("connections must be at least 1 (got {})", o.connections));
  check(!o.probe_query.empty(), o.name, "probe_query is empty");
  check(o.probe_timeout > milliseconds::zero(), o.name, "probe_timeout must be positive");
  check(o.connect_timeout > milliseconds::zero(), o.name, "connect_timeout must be positive");
  check(o.heartbeat >= milliseconds::zero(), o.name, "heartbeat must not be negative");
  // libpq takes keepalive settings in whole seconds, and 0 would mean "the system default" (2 h).
  check(o.keepalives_idle >= std::chrono::seconds(1), o.name,
        "keepalives_idle must be at least 1s");
  check(o.keepalives_interval >= std::chrono::seconds(1), o.name,
        "keepalives_interval must be at least 1s");
  check(o.keepalives_count >= 1, o.name, "keepalives_count must be at least 1");
  check(o.tcp_user_timeout >= milliseconds::zero(), o.name,
        "tcp_user_timeout must not be negative");
  check(o.backoff_initial > milliseconds::zero(), o.name, "backoff_initial must be positive");
  check(o.backoff_max >= o.backoff_initial, o.name,
        "backoff_max must not be less than backoff_initial");
  for (const std::string& channel : o.listen_channels)
    check(!channel.empty(), o.name, "a listen channel is empty");

  TargetSettings s;
  try {
    s.link.conninfo = Conninfo::parse(o.conninfo);
  } catch (const InvalidTarget& e) {
    throw InvalidTarget(fmt::format("target '{}': {}", o.name, e.what()));
  }
  Conninfo& c = s.link.conninfo;
  check(!c.get("service"), o.name,
        "service= is not supported: libpq would resolve the service's host with a blocking lookup");
  const auto host = c.get("host") ? c.get("host") : environment_default("host");
  const auto hostaddr = c.get("hostaddr");
  check(!(host && host->find(',') != std::string::npos) &&
            !(hostaddr && hostaddr->find(',') != std::string::npos),
        o.name, "several hosts in one conninfo are not supported yet");
  // Only a real name needs evdns: not a socket directory, an abstract socket, or an IP literal.
  if (host && !host->empty() && !hostaddr && host->front() != '/' && host->front() != '@' &&
      !is_ip_literal(*host))
    s.link.host = *host;

  c.set_default("fallback_application_name", "pgwatchdog");
  c.set_default("keepalives", "1");
  c.set_default("keepalives_idle", std::to_string(ceil_seconds(o.keepalives_idle)));
  c.set_default("keepalives_interval", std::to_string(ceil_seconds(o.keepalives_interval)));
  c.set_default("keepalives_count", std::to_string(o.keepalives_count));
  c.set_default("tcp_user_timeout", std::to_string(o.tcp_user_timeout.count()));

  s.link.probe_query = o.probe_query;
  for (const std::string& channel : o.listen_channels)
    s.link.setup_sql += "LISTEN " + quote_identifier(channel) + ";";
  s.link.dsn_for_redaction = o.conninfo;

  s.lifecycle = {o.connect_timeout, o.probe_timeout, o.heartbeat, o.backoff_initial, o.backoff_max};
  return s;
}

void validate(const TargetOptions& options) {
  (void)prepare_target(options);
}

std::string redact_conninfo(std::string_view conninfo) {
  try {
    return Conninfo::parse(conninfo).redacted();
  } catch (const InvalidTarget&) {
    return redact_secrets(conninfo, conninfo);
  }
}

}  // namespace pgwd
