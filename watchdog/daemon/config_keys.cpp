#include "daemon/config_keys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "daemon/duration.hpp"
#include "daemon/listen_address.hpp"
#include "daemon/yaml_document.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using Shown = std::optional<std::string>;

constexpr long long ms(Duration duration) {
  return duration.count();
}

// A string as --check-config prints it: loading it back expands no `${`.
std::string as_yaml_string(std::string_view text) {
  return yaml_quoted(escape_env_references(text));
}

Shown shown_path(const std::string& path) {
  if (path.empty()) return std::nullopt;
  return as_yaml_string(path);
}

constexpr std::array<std::string_view, 2> kPoolerNames{"none", "pgbouncer"};

// How the plain settings of a target are read and shown: one field of TargetOptions each.
template <Duration TargetOptions::*field>
void read_duration(const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
  d.options.*field = r.duration(e, range);
}
template <Duration TargetOptions::*field>
Shown show_duration(const ShownTarget& t) {
  return format_duration(t.options.*field);
}
template <int TargetOptions::*field>
void read_count(const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
  d.options.*field = static_cast<int>(r.integer(e, range));
}
template <int TargetOptions::*field>
Shown show_count(const ShownTarget& t) {
  return std::to_string(t.options.*field);
}
template <std::string TargetOptions::*field>
void read_text(const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
  d.options.*field = r.string(e, range);
}
template <std::string TargetOptions::*field>
Shown show_text(const ShownTarget& t) {
  return as_yaml_string(t.options.*field);
}

// The library's pgwd::validate refuses the same values as these ranges (and says so in its own
// words): the loader checks them too so that a message names the key and its line. Keepalive
// limits are Linux's (TCP_KEEPIDLE and TCP_KEEPINTVL at most 32767 s, TCP_KEEPCNT at most 127):
// beyond them every connect would fail.
// clang-format off
constexpr std::array<TopLevelKey, 7> kTopLevelKeys{{
    {"listen", KeyPlace::top_level, ValueType::string,
     {.also = "`HOST:PORT`: an IPv4 address or a host name, port 0 to 65535 (0: any free port)"}, "",
     "the HTTP port (`/metrics`, health endpoints, status page); an IPv6 address is refused (the "
     "port binds IPv4 only). `--listen` overrides it; a SIGHUP cannot change it",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TopLevelDraft& d) {
       d.config.listen = r.string(e, range);
       try {
         check_listen_address(d.config.listen);
       } catch (const ConfigError& error) {
         r.fail(e.line, error.what());
       }
     },
     [](const DaemonConfig& c) -> Shown { return as_yaml_string(c.listen); }},
    {"log_level", KeyPlace::top_level, ValueType::choice,
     {.choices = kLogLevelNames, .choice_noun = "level"}, "",
     "the least severe log lines written; `--log-level` overrides it",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TopLevelDraft& d) {
       d.config.log_level = *parse_log_level(r.choice(e, range));
     },
     [](const DaemonConfig& c) -> Shown { return std::string(to_string(c.log_level)); }},
    {"log_format", KeyPlace::top_level, ValueType::choice,
     {.choices = kLogFormatNames, .choice_noun = "format"}, "",
     "`json`: one JSON object per log line; `--log-format` overrides it",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TopLevelDraft& d) {
       d.config.log_format = *parse_log_format(r.choice(e, range));
     },
     [](const DaemonConfig& c) -> Shown { return std::string(to_string(c.log_format)); }},
    {"per_target_histograms", KeyPlace::top_level, ValueType::boolean, {}, "",
     "`false`: `pgwatchdog_probe_duration_seconds` and `pgwatchdog_outage_seconds` are one "
     "histogram each for all targets, labelled `loop=\"daemon\"` instead of `target`, which halves "
     "the series (see [metrics.md](metrics.md)); read at start-up only",
     [](const ValueReader& r, const Entry& e, const ValueRange&, TopLevelDraft& d) {
       d.config.per_target_histograms = r.boolean(e);
     },
     [](const DaemonConfig& c) -> Shown { return c.per_target_histograms ? "true" : "false"; }},
    {"connector_threads", KeyPlace::top_level, ValueType::integer,
     {.min = 0, .max = static_cast<long long>(kMaxConnectorThreads),
      .zero_means = "on the watch loop"},
     "one per core, at most 4",
     "threads that run connect attempts (TCP, TLS, SCRAM inside libpq's `PQconnectPoll`) off the "
     "watch loop; `0`: on the watch loop, as the library does by default; read at start-up only "
     "(a SIGHUP that changes it logs a warning)",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TopLevelDraft& d) {
       d.config.connector_threads = static_cast<std::size_t>(r.integer(e, range));
     },
     [](const DaemonConfig& c) -> Shown { return std::to_string(c.connector_threads); }},
    {"defaults", KeyPlace::top_level, ValueType::map, {}, "",
     "the target keys that may be set here (where: defaults, targets); every target inherits "
     "them, and its own value wins",
     [](const ValueReader&, const Entry& e, const ValueRange&, TopLevelDraft& d) { d.defaults = e; },
     nullptr},
    {"targets", KeyPlace::top_level, ValueType::list, {}, "",
     "the list of targets, each a map of the target keys below",
     [](const ValueReader&, const Entry& e, const ValueRange&, TopLevelDraft& d) { d.targets = e; },
     nullptr},
}};

constexpr std::array<TargetKey, 23> kTargetKeys{{
    {"name", KeyPlace::targets_only, ValueType::string,
     {.also = "1 to 128 bytes, printable UTF-8"}, "(required)",
     "the `target` label of the metrics and the name in logs and events; never the DSN",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       if (e.value.IsNull()) return;  // reported as a missing name
       d.options.name = r.string(e, range);
       d.name_line = e.line;
     },
     [](const ShownTarget& t) -> Shown { return as_yaml_string(t.options.name); }},
    {"dsn", KeyPlace::targets_only, ValueType::string,
     {.also = "one libpq conninfo, at most 100 hosts"}, "(required, or `dsn_file`)",
     "libpq conninfo, `key=value` or URI (see [Connection strings](#connection-strings)); printed "
     "with its password as `***`",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       if (e.value.IsNull()) return;
       d.options.conninfo = r.string(e, range);
       d.dsn_line = e.line;
     },
     [](const ShownTarget& t) -> Shown {
       return as_yaml_string(redact_conninfo(t.options.conninfo));
     }},
    {"dsn_file", KeyPlace::targets_only, ValueType::string, {}, "",
     "a file whose content is the whole DSN (see [Secrets](#secrets)); not with `dsn`",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       if (e.value.IsNull()) return;
       d.sources.dsn_file = r.string(e, range);
       d.dsn_file_line = e.line;
     },
     [](const ShownTarget& t) { return shown_path(t.sources.dsn_file); }, true},
    {"patroni", KeyPlace::targets_only, ValueType::string_list,
     {.max_size = kMaxRestEndpoints,
      .also = "each an `http://` or `https://` URL, without a user or password"}, "",
     "the base URLs of a Patroni cluster's REST API (`http://10.0.0.1:8008`), tried in turn: the "
     "target is then the cluster, and each member it lists is watched as a target `NAME/MEMBER` "
     "with this target's settings (see [Patroni clusters](#patroni-clusters))",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.patroni = r.string_list(e, range);
       d.patroni_line = e.line;
     },
     [](const ShownTarget& t) -> Shown {
       if (t.cluster == nullptr) return std::nullopt;
       std::vector<std::string> urls;
       for (const std::string& url : t.cluster->rest_api) urls.push_back(as_yaml_string(url));
       return fmt::format("[{}]", fmt::join(urls, ", "));
     }},
    {"discovery_interval", KeyPlace::targets_only, ValueType::duration,
     {.min = ms(milliseconds(100)), .max = ms(hours(1))}, "`10s`",
     "with `patroni`: how often the members are read (`GET /cluster`); a member added to or "
     "removed from the cluster is watched or let go within this",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.discovery_interval = r.duration(e, range);
       d.discovery_interval_line = e.line;
     },
     [](const ShownTarget& t) -> Shown {
       if (t.cluster == nullptr) return std::nullopt;
       return format_duration(t.cluster->discovery_interval);
     }},
    {"password_file", KeyPlace::defaults_and_targets, ValueType::string, {}, "",
     "a file whose content is the password (see [Secrets](#secrets)); `\"\"` on a target turns "
     "the defaults' one off",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.sources.password_file = r.string(e, range);
       d.password_file_line = e.line;
     },
     [](const ShownTarget& t) { return shown_path(t.sources.password_file); }, true},
    {"connections", KeyPlace::defaults_and_targets, ValueType::integer, {.min = 1, .max = 1000},
     "", "idle connections opened and watched",
     read_count<&TargetOptions::connections>, show_count<&TargetOptions::connections>},
    {"probe_query", KeyPlace::defaults_and_targets, ValueType::string, {.max_size = 4096}, "",
     "the probe sent after activity on an idle connection that reading it did not explain",
     read_text<&TargetOptions::probe_query>, show_text<&TargetOptions::probe_query>},
    {"probe_timeout", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(milliseconds(1)), .max = ms(hours(1))}, "",
     "deadline of a probe or a heartbeat; without an answer by then the connection is down with "
     "`probe_timeout`",
     read_duration<&TargetOptions::probe_timeout>, show_duration<&TargetOptions::probe_timeout>},
    {"connect_timeout", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(milliseconds(1)), .max = ms(minutes(10))}, "",
     "deadline of one host of a connect attempt: DNS, TCP, TLS, authentication and LISTEN (libpq "
     "ignores its own in non-blocking mode, so the watchdog enforces this one)",
     read_duration<&TargetOptions::connect_timeout>, show_duration<&TargetOptions::connect_timeout>},
    {"heartbeat", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = 0, .max = ms(hours(24)), .zero_means = "off"}, "",
     "one round trip per target per period, on one idle connection in turn, that is no statement "
     "(see [detection.md](detection.md#the-heartbeat)): a hung server is down within `heartbeat` "
     "+ `probe_timeout` (10 s), a role change shows within `heartbeat`; `0`: none at all "
     "(`--check-config` warns)",
     read_duration<&TargetOptions::heartbeat>, show_duration<&TargetOptions::heartbeat>},
    {"heartbeat_query", KeyPlace::defaults_and_targets, ValueType::string, {.max_size = 4096}, "",
     "empty: the heartbeat is a bare protocol round trip; else this statement is sent instead "
     "(logged and counted by the server like any statement); refused with `pooler`",
     read_text<&TargetOptions::heartbeat_query>, show_text<&TargetOptions::heartbeat_query>},
    {"pooler", KeyPlace::defaults_and_targets, ValueType::choice,
     {.choices = kPoolerNames, .choice_noun = "pooler"}, "",
     "`pgbouncer`: the DSN points at PgBouncer, session or transaction pooling (see "
     "[detection.md](detection.md#through-pgbouncer-pooler-pgbouncer)); the heartbeat is then a "
     "statement and `heartbeat_query` cannot be set; `heartbeat: 0` with it gets its own "
     "`--check-config` warning",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.options.pooler = *parse_pooler(r.choice(e, range));
     },
     [](const ShownTarget& t) -> Shown { return std::string(to_string(t.options.pooler)); }},
    {"proxied", KeyPlace::defaults_and_targets, ValueType::boolean, {}, "",
     "`true`: a TCP proxy (HAProxy, a load balancer) stands in front of the server; changes "
     "nothing in the watching, but `heartbeat: 0` with it gets its own `--check-config` warning "
     "(see [detection.md](detection.md#through-haproxy-and-other-tcp-proxies-proxied-true))",
     [](const ValueReader& r, const Entry& e, const ValueRange&, TargetDraft& d) {
       d.options.proxied = r.boolean(e);
     },
     [](const ShownTarget& t) -> Shown { return t.options.proxied ? "true" : "false"; }},
    {"in_front_of", KeyPlace::targets_only, ValueType::string, {.also = "a target's name"}, "",
     "the name of the direct target behind this one's pooler or proxy: its disconnects and role "
     "changes make this target send a round trip at once (see "
     "[detection.md](detection.md#through-pgbouncer-pooler-pgbouncer)); `--check-config` warns if "
     "no target has that name",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.options.in_front_of = r.string(e, range);
     },
     [](const ShownTarget& t) -> Shown {
       if (t.options.in_front_of.empty()) return std::nullopt;
       return as_yaml_string(t.options.in_front_of);
     }},
    {"keepalives_idle", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(seconds(1)), .max = ms(seconds(32767))}, "",
     "TCP keepalive idle time, whole seconds",
     read_duration<&TargetOptions::keepalives_idle>, show_duration<&TargetOptions::keepalives_idle>},
    {"keepalives_interval", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(seconds(1)), .max = ms(seconds(32767))}, "",
     "between keepalive probes",
     read_duration<&TargetOptions::keepalives_interval>, show_duration<&TargetOptions::keepalives_interval>},
    {"keepalives_count", KeyPlace::defaults_and_targets, ValueType::integer,
     {.min = 1, .max = 127}, "",
     "keepalive probes before the kernel gives up",
     read_count<&TargetOptions::keepalives_count>, show_count<&TargetOptions::keepalives_count>},
    {"tcp_user_timeout", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = 0, .max = ms(hours(24)), .zero_means = "system default"}, "",
     "`TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged",
     read_duration<&TargetOptions::tcp_user_timeout>, show_duration<&TargetOptions::tcp_user_timeout>},
    {"backoff_initial", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(milliseconds(1)), .max = ms(hours(1))}, "",
     "the first reconnect delay's ceiling",
     read_duration<&TargetOptions::backoff_initial>, show_duration<&TargetOptions::backoff_initial>},
    {"backoff_max", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = ms(milliseconds(1)), .max = ms(hours(24)), .also = "and at least `backoff_initial`"},
     "", "the cap of the ceiling, which doubles per failed attempt",
     read_duration<&TargetOptions::backoff_max>, show_duration<&TargetOptions::backoff_max>},
    {"scout_interval", KeyPlace::defaults_and_targets, ValueType::duration,
     {.min = 0, .max = ms(hours(1)), .zero_means = "off"}, "",
     "while connections wait out a backoff, one of them tries at once every this often (an attempt "
     "still on its way gets a second one beside it); once one is back the others follow within "
     "min(`backoff_initial`, `scout_interval`); after an immediate shutdown or a crash no "
     "connection tries before the scout's first turn (see "
     "[detection.md](detection.md#back-as-soon-as-the-server-is)); `0`: each keeps its own backoff",
     read_duration<&TargetOptions::scout_interval>, show_duration<&TargetOptions::scout_interval>},
    {"listen_channels", KeyPlace::defaults_and_targets, ValueType::string_list,
     {.max_size = 100, .also = "each 1 to 63 bytes"}, "",
     "channels to `LISTEN` on after every connect; NOTIFYs are counted and logged; a target's list "
     "replaces the defaults' one",
     [](const ValueReader& r, const Entry& e, const ValueRange& range, TargetDraft& d) {
       d.options.listen_channels = r.string_list(e, range);
     },
     [](const ShownTarget& t) -> Shown {
       std::vector<std::string> channels;
       for (const std::string& channel : t.options.listen_channels)
         channels.push_back(as_yaml_string(channel));
       return fmt::format("[{}]", fmt::join(channels, ", "));
     }},
}};
// clang-format on

std::string_view type_name(ValueType type) {
  switch (type) {
    case ValueType::string:
      return "string";
    case ValueType::integer:
      return "integer";
    case ValueType::duration:
      return "duration";
    case ValueType::boolean:
      return "boolean";
    case ValueType::choice:
      return "choice";
    case ValueType::string_list:
      return "list of strings";
    case ValueType::map:
      return "map";
    case ValueType::list:
      return "list of maps";
  }
  return "";
}

std::string_view place_name(KeyPlace place) {
  switch (place) {
    case KeyPlace::top_level:
      return "top level";
    case KeyPlace::defaults_and_targets:
      return "defaults, targets";
    case KeyPlace::targets_only:
      return "targets";
  }
  return "";
}

std::string code(std::string_view text) {
  return "`" + std::string(text) + "`";
}

// A bound as the docs write it: `0 (off)` where zero means something.
std::string bound(ValueType type, long long value, std::string_view zero_means) {
  std::string text = value == 0                    ? "0"
                     : type == ValueType::duration ? format_duration(milliseconds(value))
                                                   : std::to_string(value);
  if (value == 0 && !zero_means.empty()) text += " (" + std::string(zero_means) + ")";
  return text;
}

std::string range_text(ValueType type, const ValueRange& range) {
  std::string text;
  switch (type) {
    case ValueType::integer:
    case ValueType::duration:
      text = bound(type, range.min, range.zero_means) + " to " + bound(type, range.max, {});
      break;
    case ValueType::string:
      if (range.max_size != 0) text = fmt::format("at most {} bytes", range.max_size);
      break;
    case ValueType::string_list:
      if (range.max_size != 0) text = fmt::format("at most {}", range.max_size);
      break;
    case ValueType::boolean:
      text = "`true`, `false`";
      break;
    case ValueType::choice: {
      std::vector<std::string> names;
      for (std::string_view name : range.choices) names.push_back(code(name));
      text = fmt::format("{}", fmt::join(names, ", "));
      break;
    }
    case ValueType::map:
    case ValueType::list:
      break;
  }
  if (!range.also.empty()) text += (text.empty() ? "" : ", ") + std::string(range.also);
  return text;
}

template <class Key, class Shown>
std::string default_text(const Key& key, const Shown& default_config) {
  if (!key.default_text.empty()) return std::string(key.default_text);
  if (key.show == nullptr) return "";
  const std::optional<std::string> shown = key.show(default_config);
  return shown ? code(*shown) : "";
}

}  // namespace

std::span<const TopLevelKey> top_level_keys() {
  return kTopLevelKeys;
}
std::span<const TargetKey> target_keys() {
  return kTargetKeys;
}

std::vector<std::string_view> top_level_key_names() {
  std::vector<std::string_view> names;
  for (const TopLevelKey& key : kTopLevelKeys) names.push_back(key.name);
  return names;
}

std::vector<std::string_view> defaults_key_names() {
  std::vector<std::string_view> names;
  for (const TargetKey& key : kTargetKeys)
    if (key.place == KeyPlace::defaults_and_targets) names.push_back(key.name);
  return names;
}

std::vector<std::string_view> target_key_names() {
  std::vector<std::string_view> names;
  for (const TargetKey& key : kTargetKeys) names.push_back(key.name);
  return names;
}

const TopLevelKey* find_top_level_key(std::string_view name) {
  const auto* key = std::find_if(kTopLevelKeys.begin(), kTopLevelKeys.end(),
                                 [&](const TopLevelKey& k) { return k.name == name; });
  return key == kTopLevelKeys.end() ? nullptr : key;
}

const TargetKey* find_target_key(std::string_view name) {
  const auto* key = std::find_if(kTargetKeys.begin(), kTargetKeys.end(),
                                 [&](const TargetKey& k) { return k.name == name; });
  return key == kTargetKeys.end() ? nullptr : key;
}

std::string config_key_tables() {
  std::string out = "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  DaemonConfig defaults;
  for (const TopLevelKey& key : kTopLevelKeys)
    out += fmt::format("| {} | {} | {} | {} | {} |\n", code(key.name), type_name(key.type),
                       default_text(key, defaults), range_text(key.type, key.range), key.help);
  out += "\n| key | where | type | default | range | meaning |\n|---|---|---|---|---|---|\n";
  const TargetOptions options;
  const SecretSources sources;
  const ShownTarget target{options, sources};
  for (const TargetKey& key : kTargetKeys)
    out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", code(key.name), place_name(key.place),
                       type_name(key.type), default_text(key, target),
                       range_text(key.type, key.range), key.help);
  return out;
}

}  // namespace pgwd::daemon
