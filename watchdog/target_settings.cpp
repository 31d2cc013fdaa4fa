#include "target_settings.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "pg/host_list.hpp"
#include "pg/secrets.hpp"
#include "pgwd/watchdog.hpp"
#include "text/utf8.hpp"

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

// The upper bounds keep every duration far from overflowing where it is used: as nanoseconds on
// a steady clock, multiplied by the number of hosts, or handed to libpq as an int.
void check_at_most(milliseconds value, milliseconds limit, std::string_view limit_text,
                   const std::string& target, std::string_view key) {
  check(value <= limit, target,
        fmt::format("{} must be at most {} (got {}ms)", key, limit_text, value.count()));
}

constexpr std::size_t kMaxNameBytes = 128;
constexpr std::size_t kMaxHosts = 100;
// PostgreSQL's NAMEDATALEN - 1: the server would silently cut a longer channel name.
constexpr std::size_t kMaxChannelBytes = 63;

// A name shows up in logs, in metric labels and on dashboards: nothing in it may be invisible,
// reorder the text around it (bidi controls) or break a line.
bool is_printable_in_name(char32_t c) {
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;    // C0, DEL, C1
  if (c == 0xad || c == 0x61c || c == 0x180e) return false;  // soft hyphen, Arabic letter mark
  if ((c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f))
    return false;  // zero-width, line/paragraph separators, bidi embeddings and isolates
  if (c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb)) return false;
  if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe) return false;  // noncharacters
  if (c >= 0xe0000 && c <= 0xe007f) return false;                            // tag characters
  return true;
}

// The name as a message can show it: printable characters as they are, other bytes as \xNN.
std::string shown_name(std::string_view name) {
  std::string shown;
  for (std::size_t at = 0; at < name.size() && shown.size() < 2 * kMaxNameBytes;) {
    const Utf8CodePoint next = decode_utf8(name, at);
    if (next.length > 0 && is_printable_in_name(next.code_point)) {
      shown.append(name.substr(at, next.length));
      at += next.length;
      continue;
    }
    for (std::size_t i = 0; i < std::max<std::size_t>(next.length, 1); ++i)
      shown += fmt::format("\\x{:02x}", static_cast<unsigned char>(name[at + i]));
    at += std::max<std::size_t>(next.length, 1);
  }
  return shown;
}

void check_name(const std::string& name) {
  if (name.empty()) throw InvalidTarget("a target needs a name");
  const auto refuse = [&](std::string_view why) {
    throw InvalidTarget(fmt::format("target '{}': {}", shown_name(name), why));
  };
  if (name.size() > kMaxNameBytes)
    refuse(fmt::format("name is longer than {} bytes ({})", kMaxNameBytes, name.size()));
  for (std::size_t at = 0; at < name.size();) {
    const Utf8CodePoint next = decode_utf8(name, at);
    if (next.length == 0) refuse(fmt::format("name is not valid UTF-8 at byte offset {}", at));
    if (!is_printable_in_name(next.code_point))
      refuse(fmt::format("name contains U+{:04X}, which is not printable, at byte offset {}",
                         static_cast<unsigned>(next.code_point), at));
    at += next.length;
  }
}

bool is_port(std::string_view port) {
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
    return false;
  const int number = std::stoi(std::string(port));
  return number >= 1 && number <= 65535;
}

// `parsed` is o.conninfo parsed, or null to parse it here: after every other check, so that a
// message about the name or a setting comes first whatever the conninfo holds.
TargetSettings prepare(const TargetOptions& o, std::optional<Conninfo> parsed) {
  check_name(o.name);  // first: every later message quotes the name as it is
  check(o.connections >= 1, o.name,
        fmt::format("connections must be at least 1 (got {})", o.connections));
  check(o.connections <= 1000, o.name,
        fmt::format("connections must be at most 1000 (got {})", o.connections));
  check(!o.probe_query.empty(), o.name, "probe_query is empty");
  // libpq takes C strings: it would silently cut these at the NUL.
  check(o.probe_query.find('\0') == std::string::npos, o.name, "probe_query contains a NUL");
  check(o.heartbeat_query.find('\0') == std::string::npos, o.name,
        "heartbeat_query contains a NUL");
  check(o.conninfo.find('\0') == std::string::npos, o.name, "the conninfo contains a NUL");
  check(o.probe_timeout > milliseconds::zero(), o.name, "probe_timeout must be positive");
  check_at_most(o.probe_timeout, std::chrono::hours(1), "1h", o.name, "probe_timeout");
  check(o.connect_timeout > milliseconds::zero(), o.name, "connect_timeout must be positive");
  check_at_most(o.connect_timeout, std::chrono::minutes(10), "10m", o.name, "connect_timeout");
  // A pooled target's heartbeat is the role question: another statement would leave the role
  // unknown (PgBouncer's ParameterStatus is its cached welcome message, not the server's).
  check(o.pooler == Pooler::none || o.heartbeat_query.empty(), o.name,
        "heartbeat_query cannot be set with a pooler: the heartbeat asks the role in SQL");
  check(o.pooler == Pooler::none || o.pooler == Pooler::pgbouncer, o.name,
        "pooler must be none or pgbouncer");
  check(o.in_front_of != o.name, o.name, "in_front_of names the target itself");
  check(o.in_front_of.size() <= kMaxNameBytes, o.name,
        fmt::format("in_front_of is longer than a target name may be ({} bytes)", kMaxNameBytes));
  check(o.heartbeat >= milliseconds::zero(), o.name, "heartbeat must not be negative");
  check_at_most(o.heartbeat, std::chrono::hours(24), "24h", o.name, "heartbeat");
  // libpq takes keepalive settings in whole seconds, and 0 would mean "the system default" (2 h).
  // Linux refuses more than 32767 s and 127 probes: every connect would fail with EINVAL.
  check(o.keepalives_idle >= std::chrono::seconds(1), o.name,
        "keepalives_idle must be at least 1s");
  check_at_most(o.keepalives_idle, std::chrono::seconds(32767), "32767s", o.name,
                "keepalives_idle");
  check(o.keepalives_interval >= std::chrono::seconds(1), o.name,
        "keepalives_interval must be at least 1s");
  check_at_most(o.keepalives_interval, std::chrono::seconds(32767), "32767s", o.name,
                "keepalives_interval");
  check(o.keepalives_count >= 1, o.name, "keepalives_count must be at least 1");
  check(o.keepalives_count <= 127, o.name,
        fmt::format("keepalives_count must be at most 127 (got {})", o.keepalives_count));
  check(o.tcp_user_timeout >= milliseconds::zero(), o.name,
        "tcp_user_timeout must not be negative");
  check_at_most(o.tcp_user_timeout, std::chrono::hours(24), "24h", o.name, "tcp_user_timeout");
  check(o.backoff_initial > milliseconds::zero(), o.name, "backoff_initial must be positive");
  check_at_most(o.backoff_initial, std::chrono::hours(1), "1h", o.name, "backoff_initial");
  check(o.backoff_max >= o.backoff_initial, o.name,
        "backoff_max must not be less than backoff_initial");
  check_at_most(o.backoff_max, std::chrono::hours(24), "24h", o.name, "backoff_max");
  check(o.scout_interval >= milliseconds::zero(), o.name, "scout_interval must not be negative");
  check_at_most(o.scout_interval, std::chrono::hours(1), "1h", o.name, "scout_interval");
  for (const std::string& channel : o.listen_channels) {
    check(!channel.empty(), o.name, "a listen channel is empty");
    check(channel.size() <= kMaxChannelBytes, o.name,
          fmt::format("listen channel '{}...' is longer than {} bytes",
                      shown_name(channel.substr(0, 20)), kMaxChannelBytes));
    check(channel.find('\0') == std::string::npos, o.name, "a listen channel contains a NUL");
  }

  TargetSettings s;
  try {
    s.link.conninfo = parsed ? std::move(*parsed) : Conninfo::parse(o.conninfo);
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
  check(s.link.hosts.size() <= kMaxHosts, o.name,
        fmt::format("more than {} hosts ({})", kMaxHosts, s.link.hosts.size()));
  for (const HostEntry& host : s.link.hosts)
    check(host.port.empty() || is_port(host.port), o.name,
          fmt::format("port '{}' is not a number from 1 to 65535",
                      shown_name(host.port.substr(0, 20))));
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

  s.link.session.probe_query = o.probe_query;
  s.link.session.heartbeat_query = o.heartbeat_query;
  s.link.session.pooled = o.pooler != Pooler::none;
  for (const std::string& channel : o.listen_channels)
    s.link.setup_sql += "LISTEN " + quote_identifier(channel) + ";";
  s.link.session.dsn_for_redaction = o.conninfo;

  s.link.host_timeout = o.connect_timeout;
  // Each host has its own deadline inside the link; the attempt as a whole is a backstop over
  // every host, twice for prefer-standby (a standby-only pass, then any server).
  const auto passes = s.link.role == RoleRequirement::prefer_standby ? 2 : 1;
  const Nanos attempt_deadline =
      o.connect_timeout * static_cast<long>(s.link.hosts.size() * passes) + std::chrono::seconds(1);
  s.lifecycle = {attempt_deadline,
                 o.probe_timeout,
                 o.heartbeat,
                 o.backoff_initial,
                 o.backoff_max,
                 s.link.role,
                 o.scout_interval > std::chrono::milliseconds::zero()};
  s.scout_interval = o.scout_interval;
  s.scout_spread = std::min<Nanos>(o.backoff_initial, o.scout_interval);
  return s;
}

}  // namespace

TargetSettings prepare_target(const TargetOptions& options) {
  return prepare(options, std::nullopt);
}

TargetSettings prepare_target(const TargetOptions& options, Conninfo conninfo) {
  return prepare(options, std::move(conninfo));
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
