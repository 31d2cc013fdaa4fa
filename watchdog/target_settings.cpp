#include "target_settings.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <chrono>

#include "pg/host_list.hpp"
#include "pg/secrets.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd {
namespace {

using std::chrono::milliseconds;

long long ceil_seconds(milliseconds d) {
  return (d.count() + 999) / 1000;
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
  try {
    s.link.hosts = take_hosts(c);
  } catch (const InvalidTarget& e) {
    throw InvalidTarget(fmt::format("target '{}': {}", o.name, e.what()));
  }
  if (const auto attrs = c.get("target_session_attrs")) {
    const auto role = parse_role_requirement(*attrs);
    check(role.has_value(), o.name,
          "target_session_attrs must be any, read-write, read-only, primary, standby or "
          "prefer-standby");
    s.link.role = *role;
    c.erase("target_session_attrs");  // checked by the watchdog, host by host and after probes
  }

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

  s.link.host_timeout = o.connect_timeout;
  // Each host has its own deadline inside the link; the attempt as a whole is a backstop over
  // every host, twice for prefer-standby (a standby-only pass, then any server).
  const auto passes = s.link.role == RoleRequirement::prefer_standby ? 2 : 1;
  const Nanos attempt_deadline =
      o.connect_timeout * static_cast<long>(s.link.hosts.size() * passes) + std::chrono::seconds(1);
  s.lifecycle = {attempt_deadline,  o.probe_timeout, o.heartbeat,
                 o.backoff_initial, o.backoff_max,   s.link.role};
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
