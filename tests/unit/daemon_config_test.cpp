#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/config.hpp"
#include "daemon/duration.hpp"
#include "daemon/listen_address.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;

namespace {

constexpr std::string_view kOrigin = "/etc/pgwatchdog.yaml";

// The message of the ConfigError the text raises, or a marker that no error was raised.
std::string error_of(std::string_view yaml) {
  try {
    (void)parse_config(yaml, kOrigin);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string duration_error_of(std::string_view text) {
  try {
    (void)parse_duration(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::out_of_range& e) {
    return std::string("out of range: ") + e.what();
  }
  return "(no error)";
}

std::string listen_error_of(std::string_view address) {
  try {
    check_listen_address(address);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// A file in the system temporary directory, removed when the test ends.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::string_view content)
      : path_(std::filesystem::temp_directory_path() /
              ("pgwd_config_test_" + std::to_string(getpid()) + ".yaml")) {
    std::ofstream(path_) << content;
  }
  ~TemporaryFile() { std::filesystem::remove(path_); }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("daemon config: a full file sets every key and targets inherit then override defaults") {
  const DaemonConfig config = parse_config(R"(# every key once
listen: "0.0.0.0:9999"
log_level: debug
log_format: json
defaults:
  connections: 3
  probe_query: "SELECT 2"
  probe_timeout: 7s
  connect_timeout: 4s
  heartbeat: 1m
  pooler: pgbouncer
  proxied: true
  keepalives_idle: 6s
  keepalives_interval: 3s
  keepalives_count: 4
  tcp_user_timeout: 12s
  backoff_initial: 250ms
  backoff_max: 1m
  listen_channels: [jobs, alerts]
targets:
  - name: primary
    dsn: "host=db1.internal port=5432 dbname=app user=watchdog"
    connections: 2
    in_front_of: replica
  - name: replica
    dsn: "host=db2.internal dbname=app"
    probe_query: "SELECT 3"
    probe_timeout: 1500ms
    connect_timeout: 2s
    heartbeat: 0
    pooler: none
    proxied: false
    keepalives_idle: 10s
    keepalives_interval: 5s
    keepalives_count: 9
    tcp_user_timeout: 0s
    backoff_initial: 1s
    backoff_max: 2h
    listen_channels:
      - other
)",
                                           kOrigin);
  CHECK(config.listen == "0.0.0.0:9999");
  CHECK(config.log_level == LogLevel::debug);
  CHECK(config.log_format == LogFormat::json);

  TargetOptions defaults;
  defaults.connections = 3;
  defaults.probe_query = "SELECT 2";
  defaults.probe_timeout = 7s;
  defaults.connect_timeout = 4s;
  defaults.heartbeat = 1min;
  defaults.pooler = Pooler::pgbouncer;
  defaults.proxied = true;
  defaults.keepalives_idle = 6s;
  defaults.keepalives_interval = 3s;
  defaults.keepalives_count = 4;
  defaults.tcp_user_timeout = 12s;
  defaults.backoff_initial = 250ms;
  defaults.backoff_max = 1min;
  defaults.listen_channels = {"jobs", "alerts"};
  CHECK(config.defaults == defaults);

  REQUIRE(config.targets.size() == 2);
  TargetOptions primary = defaults;
  primary.name = "primary";
  primary.conninfo = "host=db1.internal port=5432 dbname=app user=watchdog";
  primary.connections = 2;
  primary.in_front_of = "replica";
  CHECK(config.targets[0] == primary);

  TargetOptions replica = defaults;
  replica.name = "replica";
  replica.conninfo = "host=db2.internal dbname=app";
  replica.probe_query = "SELECT 3";
  replica.probe_timeout = 1500ms;
  replica.connect_timeout = 2s;
  replica.heartbeat = 0s;
  replica.pooler = Pooler::none;
  replica.proxied = false;
  replica.keepalives_idle = 10s;
  replica.keepalives_interval = 5s;
  replica.keepalives_count = 9;
  replica.tcp_user_timeout = 0s;
  replica.backoff_initial = 1s;
  replica.backoff_max = 2h;
  replica.listen_channels = {"other"};  // replaces the default list
  CHECK(config.targets[1] == replica);
}

TEST_CASE("daemon config: keys left out keep the documented defaults") {
  const DaemonConfig config = parse_config("targets:\n  - name: a\n    dsn: host=x\n", kOrigin);
  CHECK(config.listen == "127.0.0.1:10432");
  CHECK(config.listen == kDefaultListen);
  CHECK(config.log_level == LogLevel::info);
  CHECK(config.log_format == LogFormat::text);
  CHECK(config.per_target_histograms);
  CHECK(config.defaults == TargetOptions{});
  REQUIRE(config.targets.size() == 1);
  TargetOptions expected;
  expected.name = "a";
  expected.conninfo = "host=x";
  CHECK(config.targets[0] == expected);
}

TEST_CASE("daemon config: defaults written after targets still apply to them") {
  const DaemonConfig config = parse_config(R"(targets:
  - {name: a, dsn: "host=x"}
defaults:
  connections: 5
)",
                                           kOrigin);
  REQUIRE(config.targets.size() == 1);
  CHECK(config.targets[0].connections == 5);
}

TEST_CASE("daemon config: no targets at all is valid") {
  for (std::string_view text :
       {"", "\n", "# only a comment\n", "targets: []\n", "defaults:\ntargets:\n", "---\n",
        "listen: \"127.0.0.1:1\"\n---\n"}) {
    CAPTURE(text);
    CHECK(parse_config(text, kOrigin).targets.empty());
  }
}

TEST_CASE("daemon config: an explicitly empty dsn is kept for libpq's environment defaults") {
  const DaemonConfig config = parse_config("targets:\n  - name: a\n    dsn: \"\"\n", kOrigin);
  REQUIRE(config.targets.size() == 1);
  CHECK(config.targets[0].conninfo.empty());
}

TEST_CASE("duration: the accepted forms") {
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("0s") == 0ms);
  CHECK(parse_duration("0ms") == 0ms);
  CHECK(parse_duration("0h") == 0ms);
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("1500ms") == 1500ms);
  CHECK(parse_duration("10s") == 10s);
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("1m") == 1min);
  CHECK(parse_duration("2h") == 2h);
  CHECK(parse_duration("007s") == 7s);
}

TEST_CASE("duration: anything else is refused with the text quoted") {
  CHECK(duration_error_of("5 seconds") ==
        "bad duration '5 seconds' (use a number with ms, s, m or h: 250ms, 10s, 1m)");
  for (std::string_view text :
       {"",    "5",   "00", "s",   "ms",  "5S",    "5MS",   "-5s", "+5s",   "1.5s",   "5sec", "5 s",
        " 5s", "5s ", "5d", "5us", "5ns", "0x10s", "1e3ms", "5s5", "5ms5s", "five s", "1m30s"}) {
    CAPTURE(text);
    CHECK(duration_error_of(text) == "bad duration '" + std::string(text) +
                                         "' (use a number with ms, s, m or h: 250ms, 10s, 1m)");
  }
}

TEST_CASE("duration: too long to count in milliseconds") {
  CHECK(duration_error_of("99999999999999999999ms") ==
        "out of range: duration '99999999999999999999ms' is too long");
  CHECK(duration_error_of("9999999999999999h") ==
        "out of range: duration '9999999999999999h' is too long");
  CHECK(parse_duration("9223372036854775807ms").count() == 9223372036854775807);
}

TEST_CASE("duration: an echoed value stays on one line") {
  CHECK(duration_error_of("5\ns") ==
        "bad duration '5\\ns' (use a number with ms, s, m or h: 250ms, 10s, 1m)");
}

TEST_CASE("duration: format_duration picks the shortest exact form") {
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(10s) == "10s");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(60s) == "1m");
  CHECK(format_duration(61min) == "61m");
  CHECK(format_duration(120min) == "2h");
  CHECK(format_duration(2h) == "2h");
  CHECK(format_duration(-5s) == "-5s");
}

TEST_CASE("duration: formatting then parsing gives the same duration back") {
  for (std::chrono::milliseconds d : std::initializer_list<std::chrono::milliseconds>{
           0ms, 1ms, 100ms, 999ms, 1000ms, 1001ms, 59s, 60s, 61s, 3599s, 3600s, 25h,
           std::chrono::milliseconds(9223372036854775807)}) {
    CAPTURE(d.count());
    CHECK(parse_duration(format_duration(d)) == d);
  }
  for (std::string_view text : {"0s", "250ms", "10s", "1m", "90s", "1500ms", "2h"}) {
    CAPTURE(text);
    CHECK(format_duration(parse_duration(text)) == text);
  }
}

TEST_CASE("daemon config: log level and format names") {
  for (LogLevel level :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
    CHECK(parse_log_level(to_string(level)) == level);
  for (LogFormat format : {LogFormat::text, LogFormat::json})
    CHECK(parse_log_format(to_string(format)) == format);
  CHECK(to_string(LogLevel::warn) == "warn");
  CHECK(to_string(LogFormat::json) == "json");
  CHECK_FALSE(parse_log_level("warning"));
  CHECK_FALSE(parse_log_level("INFO"));
  CHECK_FALSE(parse_log_level(""));
  CHECK_FALSE(parse_log_format("JSON"));
  CHECK_FALSE(parse_log_format("xml"));
}

TEST_CASE("daemon config: a YAML syntax error gives yaml-cpp's reason and the line") {
  CHECK(error_of("listen: \"127.0.0.1:1\"\ntargets: [a, b\nlog_level: info\n") ==
        "/etc/pgwatchdog.yaml:3: YAML syntax error: end of sequence flow not found");
  CHECK(error_of("defaults:\n  connections: 1\n    probe_timeout: 5s\n") ==
        "/etc/pgwatchdog.yaml:3: YAML syntax error: illegal map value");
}

TEST_CASE("daemon config: a second YAML document is refused") {
  CHECK(error_of("log_level: info\n---\nlog_level: debug\n") ==
        "/etc/pgwatchdog.yaml:2: only one YAML document is allowed (found a second one)");
}

TEST_CASE("daemon config: a file that is not a map of keys") {
  CHECK(error_of("\n- name: a\n") ==
        "/etc/pgwatchdog.yaml:2: expected a map with the keys listen, log_level, log_format, "
        "per_target_histograms, connector_threads, defaults, targets, got a list");
  CHECK(error_of("hello\n") ==
        "/etc/pgwatchdog.yaml:1: expected a map with the keys listen, log_level, log_format, "
        "per_target_histograms, connector_threads, defaults, targets, got 'hello'");
}

TEST_CASE("daemon config: unknown keys at the top level - in defaults and in a target") {
  CHECK(error_of("log_level: info\nlisten_address: \"x:1\"\n") ==
        "/etc/pgwatchdog.yaml:2: unknown key 'listen_address' (known keys: listen, log_level, "
        "log_format, per_target_histograms, connector_threads, defaults, targets)");
  CHECK(error_of("defaults:\n  connections: 1\n  probe_timout: 5s\n") ==
        "/etc/pgwatchdog.yaml:3: unknown key 'probe_timout' in defaults (known keys: "
        "password_file, connections, probe_query, probe_timeout, connect_timeout, heartbeat, "
        "heartbeat_query, pooler, proxied, keepalives_idle, keepalives_interval, keepalives_count, "
        "tcp_user_timeout, backoff_initial, backoff_max, scout_interval, listen_channels)");
  CHECK(error_of(R"(targets:
  - name: a
    dsn: host=x
  - name: b
    dsn: host=y

    probe_timout: 5s
)") == "/etc/pgwatchdog.yaml:7: unknown key 'probe_timout' in targets[1] (known keys: name, "
       "dsn, dsn_file, password_file, connections, probe_query, probe_timeout, connect_timeout, "
       "heartbeat, heartbeat_query, pooler, proxied, in_front_of, keepalives_idle, "
       "keepalives_interval, keepalives_count, tcp_user_timeout, backoff_initial, backoff_max, "
       "scout_interval, listen_channels)");
}

TEST_CASE("daemon config: name and dsn belong in a target - not in defaults") {
  CHECK(error_of("defaults:\n  dsn: host=x\n")
            .starts_with("/etc/pgwatchdog.yaml:2: unknown key 'dsn' in defaults (known keys: "
                         "password_file, connections,"));
  CHECK(error_of("name: a\n").starts_with("/etc/pgwatchdog.yaml:1: unknown key 'name' (known"));
}

TEST_CASE("daemon config: a key that is not a plain name") {
  CHECK(error_of("? [a]\n: b\n") ==
        "/etc/pgwatchdog.yaml:1: a key must be a plain name, got a list");
  CHECK(error_of("defaults:\n  {a: 1}: 2\n") ==
        "/etc/pgwatchdog.yaml:2: a key must be a plain name in defaults, got a map");
}

TEST_CASE("daemon config: a key given twice in one map is refused") {
  CHECK(error_of("log_level: info\nlog_format: text\nlog_level: debug\n") ==
        "/etc/pgwatchdog.yaml:3: key 'log_level' appears twice (first at line 1)");
  CHECK(error_of(
            "targets:\n  - name: a\n    dsn: host=x\n    connections: 1\n    connections: 2\n") ==
        "/etc/pgwatchdog.yaml:5: key 'connections' appears twice in targets[0] (first at line 4)");
  CHECK(error_of("defaults:\n  heartbeat: 1s\n  heartbeat: 2s\n") ==
        "/etc/pgwatchdog.yaml:3: key 'heartbeat' appears twice in defaults (first at line 2)");
}

TEST_CASE("daemon config: integers must be plain numbers within their key's range") {
  const auto target_with = [](std::string_view line) {
    return "targets:\n  - name: a\n    dsn: host=x\n    " + std::string(line) + "\n";
  };
  CHECK(error_of(target_with("connections: abc")) ==
        "/etc/pgwatchdog.yaml:4: connections: expected an integer, got 'abc'");
  for (std::string_view value : {"1.5", "+2", "0x10", "1e3", "--1", "\"\""}) {
    CAPTURE(value);
    const std::string shown = value == "\"\"" ? "" : std::string(value);
    CHECK(error_of(target_with("keepalives_count: " + std::string(value))) ==
          "/etc/pgwatchdog.yaml:4: keepalives_count: expected an integer, got '" + shown + "'");
  }
  for (std::string_view value : {"-1", "0", "128", "2147483648", "99999999999999999999"}) {
    CAPTURE(value);
    CHECK(error_of(target_with("keepalives_count: " + std::string(value))) ==
          "/etc/pgwatchdog.yaml:4: keepalives_count: '" + std::string(value) +
              "' is out of range (1 to 127)");
  }
  CHECK(error_of(target_with("connections: {a: 1}")) ==
        "/etc/pgwatchdog.yaml:4: connections: expected an integer, got a map");
  CHECK(error_of(target_with("connections: [1]")) ==
        "/etc/pgwatchdog.yaml:4: connections: expected an integer, got a list");
  CHECK(error_of(target_with("connections:")) ==
        "/etc/pgwatchdog.yaml:4: connections: expected an integer, got nothing");
  CHECK(error_of(target_with("connections: 2147483647")) ==
        "/etc/pgwatchdog.yaml:4: connections: '2147483647' is out of range (1 to 1000)");
  CHECK(parse_config(target_with("connections: 1000"), kOrigin).targets[0].connections == 1000);
  CHECK(parse_config(target_with("keepalives_count: 127"), kOrigin).targets[0].keepalives_count ==
        127);
}

TEST_CASE("daemon config: a value of the wrong type is reported at its key") {
  CHECK(error_of("defaults:\n  connections:\n    a: 1\n") ==
        "/etc/pgwatchdog.yaml:2: connections: expected an integer, got a map");
  CHECK(error_of("defaults:\n  probe_query: [SELECT 1]\n") ==
        "/etc/pgwatchdog.yaml:2: probe_query: expected a string, got a list");
  CHECK(error_of("defaults:\n  probe_timeout: {s: 5}\n") ==
        "/etc/pgwatchdog.yaml:2: probe_timeout: expected a duration such as 10s, got a map");
  CHECK(error_of("log_level: [info]\n") ==
        "/etc/pgwatchdog.yaml:1: log_level: expected a string, got a list");
  CHECK(error_of("listen:\n") == "/etc/pgwatchdog.yaml:1: listen: expected a string, got nothing");
  CHECK(error_of("defaults: 5\n") ==
        "/etc/pgwatchdog.yaml:1: defaults: expected a map of target settings, got '5'");
  CHECK(error_of("targets:\n  name: a\n  dsn: host=x\n") ==
        "/etc/pgwatchdog.yaml:1: targets: expected a list of targets, got a map");
  CHECK(error_of("targets:\n  - name: a\n    dsn: host=x\n  - primary\n") ==
        "/etc/pgwatchdog.yaml:4: targets[1]: expected a map with name and dsn, got 'primary'");
  CHECK(error_of("targets:\n  - name: [a]\n    dsn: host=x\n") ==
        "/etc/pgwatchdog.yaml:2: name: expected a string, got a list");
}

TEST_CASE("daemon config: listen_channels must be a list of strings") {
  CHECK(error_of("defaults:\n  listen_channels: jobs\n") ==
        "/etc/pgwatchdog.yaml:2: listen_channels: expected a list of strings, got 'jobs'");
  CHECK(error_of("defaults:\n  listen_channels:\n    - jobs\n    - {a: b}\n") ==
        "/etc/pgwatchdog.yaml:4: listen_channels[1]: expected a string, got a map");
  CHECK(parse_config("defaults:\n  listen_channels:\n", kOrigin).defaults.listen_channels.empty());
}

TEST_CASE("daemon config: a bad duration names the key and the line") {
  CHECK(error_of("targets:\n  - name: a\n    dsn: host=x\n    probe_timeout: 5 seconds\n") ==
        "/etc/pgwatchdog.yaml:4: probe_timeout: bad duration '5 seconds' (use a number with ms, "
        "s, m or h: 250ms, 10s, 1m)");
  CHECK(error_of("defaults:\n  heartbeat: 30\n") ==
        "/etc/pgwatchdog.yaml:2: heartbeat: bad duration '30' (use a number with ms, s, m or h: "
        "250ms, 10s, 1m)");
  CHECK(error_of("defaults:\n  backoff_max: -1s\n") ==
        "/etc/pgwatchdog.yaml:2: backoff_max: bad duration '-1s' (use a number with ms, s, m or "
        "h: 250ms, 10s, 1m)");
}

TEST_CASE("daemon config: unknown log level or format") {
  CHECK(error_of("\nlog_level: verbose\n") ==
        "/etc/pgwatchdog.yaml:2: log_level: unknown level 'verbose' (trace, debug, info, warn, "
        "error)");
  CHECK(error_of("log_format: xml\n") ==
        "/etc/pgwatchdog.yaml:1: log_format: unknown format 'xml' (text, json)");
}

TEST_CASE("daemon config: a bad listen address in the file") {
  CHECK(error_of("log_level: info\nlisten: \"localhost\"\n") ==
        "/etc/pgwatchdog.yaml:2: listen: bad address 'localhost' (expected HOST:PORT, e.g. "
        "127.0.0.1:10432)");
}

TEST_CASE("daemon config: a target needs a name and a dsn") {
  CHECK(error_of(R"(targets:
  - name: a
    dsn: host=x
  - name: b
    dsn: host=y
  - dsn: host=z
    connections: 2
)") == "/etc/pgwatchdog.yaml:6: targets[2] needs a name");
  CHECK(error_of("targets:\n  - name:\n    dsn: host=z\n") ==
        "/etc/pgwatchdog.yaml:2: targets[0] needs a name");
  CHECK(error_of("targets:\n  - name: \"\"\n    dsn: host=z\n") ==
        "/etc/pgwatchdog.yaml:2: targets[0] needs a name");
  CHECK(error_of("targets:\n  - connections: 2\n    name: x\n") ==
        "/etc/pgwatchdog.yaml:3: target 'x' needs a dsn");
  CHECK(error_of("targets:\n  - name: x\n    dsn:\n") ==
        "/etc/pgwatchdog.yaml:2: target 'x' needs a dsn");
}

TEST_CASE("daemon config: a name with a control character is refused without echoing it") {
  CHECK(error_of("targets:\n  - name: \"a\\nb\"\n    dsn: host=x\n") ==
        "/etc/pgwatchdog.yaml:2: target 'a\\x0ab': name contains U+000A, which is not "
        "printable, at byte offset 1");
}

TEST_CASE("daemon config: two targets with the same name") {
  CHECK(error_of(R"(targets:
  - name: x
    dsn: host=a
  - name: y
    dsn: host=b
  - dsn: host=c
    name: x
)") == "/etc/pgwatchdog.yaml:7: target 'x' is defined twice (first at line 2)");
}

TEST_CASE("daemon config: pooler is none or pgbouncer - and a pooled heartbeat asks the role") {
  CHECK(parse_config("defaults:\n  pooler: pgbouncer\n", kOrigin).defaults.pooler ==
        Pooler::pgbouncer);
  CHECK(parse_config("defaults:\n  pooler: none\n", kOrigin).defaults.pooler == Pooler::none);
  CHECK(parse_config("listen: \"127.0.0.1:0\"\n", kOrigin).defaults.pooler == Pooler::none);
  // One value for both pool modes (see Pooler): a mode name is refused, not guessed at.
  CHECK(error_of("defaults:\n  pooler: pgbouncer-transaction\n") ==
        "/etc/pgwatchdog.yaml:2: pooler: unknown pooler 'pgbouncer-transaction' (none, "
        "pgbouncer)");
  CHECK(error_of("defaults:\n  pooler: [pgbouncer]\n") ==
        "/etc/pgwatchdog.yaml:2: pooler: expected a string, got a list");
  CHECK(error_of("targets:\n  - name: p\n    dsn: host=a\n    pooler: pgbouncer\n"
                 "    heartbeat_query: SELECT 1\n") ==
        "/etc/pgwatchdog.yaml:2: target 'p': heartbeat_query cannot be set with a pooler: the "
        "heartbeat asks the role in SQL");
}

TEST_CASE("daemon config: values pgwd::validate refuses are reported at the target's name") {
  CHECK(error_of("defaults:\n  backoff_initial: 1s\n  backoff_max: 500ms\n"
                 "targets:\n  - {name: y, dsn: host=a}\n") ==
        "/etc/pgwatchdog.yaml:5: target 'y': backoff_max must not be less than backoff_initial");
  CHECK(error_of("targets:\n  - {name: y, dsn: \"host=a port=65536\"}\n") ==
        "/etc/pgwatchdog.yaml:2: target 'y': port '65536' is not a number from 1 to 65535");
  CHECK(error_of("targets:\n  - name: x\n    dsn: host=a\n    listen_channels: [\"\"]\n") ==
        "/etc/pgwatchdog.yaml:2: target 'x': a listen channel is empty");
}

TEST_CASE("daemon config: a malformed dsn never shows its password") {
  const std::string keyword_form = error_of(R"(targets:
  - name: primary
    dsn: "host=db1 user=watchdog password=hunter2 sslmode"
)");
  CHECK(keyword_form.starts_with("/etc/pgwatchdog.yaml:2: target 'primary': malformed conninfo: "));
  CHECK(keyword_form.find("hunter2") == std::string::npos);

  const std::string uri_form = error_of(R"(targets:
  - name: primary
    dsn: "postgresql://watchdog:hunter2@[db1/app"
)");
  CHECK(uri_form.starts_with("/etc/pgwatchdog.yaml:2: target 'primary': malformed conninfo: "));
  CHECK(uri_form.find("hunter2") == std::string::npos);
}

TEST_CASE("daemon config: no other error echoes a dsn or its password") {
  for (std::string_view text : {
           "targets:\n  - name: a\n    dns: \"host=x password=hunter2\"\n",
           "targets:\n  - name: a\n    dsn: \"host=x password=hunter2\"\n    dsn: host=y\n",
           "targets:\n  - name: a\n    dsn: {host: x, password: hunter2}\n",
           "targets:\n  - name: a\n    dsn: [\"password=hunter2\"]\n",
           "targets:\n  - name: a\n    dsn: \"host=x password=hunter2\"\n  - name: a\n"
           "    dsn: \"host=x password=hunter2\"\n",
           "targets:\n  - dsn: \"host=x password=hunter2\"\n",
       }) {
    CAPTURE(text);
    const std::string error = error_of(text);
    CHECK(error.starts_with("/etc/pgwatchdog.yaml:"));
    CHECK(error.find("hunter2") == std::string::npos);
  }
}

TEST_CASE("daemon config: an echoed value stays on one line and short") {
  const std::string error = error_of("log_level: |\n  info\n  debug\n");
  CHECK(error ==
        "/etc/pgwatchdog.yaml:1: log_level: unknown level 'info\\ndebug\\n' (trace, "
        "debug, info, warn, error)");
  const std::string long_value(200, 'x');
  CHECK(error_of("log_format: " + long_value + "\n") ==
        "/etc/pgwatchdog.yaml:1: log_format: unknown format '" + std::string(60, 'x') +
            "...' (text, json)");
}

TEST_CASE("daemon config: load_config_file reads a file and names it in errors") {
  {
    const TemporaryFile file("targets:\n  - name: a\n    dsn: host=x\n");
    const DaemonConfig config = load_config_file(file.path());
    REQUIRE(config.targets.size() == 1);
    CHECK(config.targets[0].name == "a");
  }
  {
    const TemporaryFile file("log_level: loud\n");
    const std::string expected =
        file.path() + ":1: log_level: unknown level 'loud' (trace, debug, info, warn, error)";
    CHECK_THROWS_WITH_AS(load_config_file(file.path()), expected.c_str(), ConfigError);
  }
  {
    const TemporaryFile file("");
    CHECK(load_config_file(file.path()).targets.empty());
  }
}

TEST_CASE("daemon config: a missing or unreadable file") {
  CHECK_THROWS_WITH_AS(
      load_config_file("/nonexistent/pgwatchdog.yaml"),
      "cannot read config file '/nonexistent/pgwatchdog.yaml': No such file or directory",
      ConfigError);
  const std::string directory = std::filesystem::temp_directory_path().string();
  const std::string expected = "cannot read config file '" + directory + "': Is a directory";
  CHECK_THROWS_WITH_AS(load_config_file(directory), expected.c_str(), ConfigError);
}

TEST_CASE("listen address: accepted forms") {
  for (std::string_view address : {"127.0.0.1:10432", "0.0.0.0:0", "localhost:9187",
                                   "db-1.internal:65535", "my_host:1", "10.0.0.1:080"}) {
    CAPTURE(address);
    CHECK(listen_error_of(address) == "(no error)");
  }
}

TEST_CASE("listen address: IPv6 is refused with its own reason") {
  // The HTTP port binds IPv4 only: such an address could never be bound.
  for (std::string_view address :
       {"[::1]:10432", "[::]:80", "[2001:db8::1]:443", "[::1]", "[]:80"}) {
    CAPTURE(address);
    CHECK(listen_error_of(address).find("IPv6 addresses are not supported") != std::string::npos);
  }
}

TEST_CASE("listen address: refused forms") {
  CHECK(listen_error_of("127.0.0.1") ==
        "listen: bad address '127.0.0.1' (expected HOST:PORT, e.g. 127.0.0.1:10432)");
  for (std::string_view address : {"",
                                   ":",
                                   ":10432",
                                   "127.0.0.1:",
                                   "127.0.0.1:65536",
                                   "127.0.0.1:123456",
                                   "127.0.0.1:abc",
                                   "127.0.0.1:+80",
                                   "127.0.0.1:-1",
                                   "::1:10432",
                                   "256.1.1.1:80",
                                   "10.0.0:80",
                                   "host name:80",
                                   "-db:80",
                                   "db-:80",
                                   "db..x:80",
                                   ".db:80",
                                   "db.:80",
                                   "http://db:80",
                                   "db:80 "}) {
    CAPTURE(address);
    CHECK(listen_error_of(address) == "listen: bad address '" + std::string(address) +
                                          "' (expected HOST:PORT, e.g. 127.0.0.1:10432)");
  }
}

TEST_CASE("daemon config: per_target_histograms is true or false, nothing else") {
  CHECK_FALSE(parse_config("per_target_histograms: false\n", kOrigin).per_target_histograms);
  CHECK(parse_config("per_target_histograms: true\n", kOrigin).per_target_histograms);
  CHECK(error_of("per_target_histograms: maybe\n") ==
        "/etc/pgwatchdog.yaml:1: per_target_histograms: expected true or false, got 'maybe'");
}

TEST_CASE("daemon config: in_front_of belongs to one target - under defaults it is an unknown key") {
  CHECK(error_of("defaults:\n  in_front_of: primary\n").find(
            "/etc/pgwatchdog.yaml:2: unknown key 'in_front_of' in defaults") == 0);
  CHECK(error_of("targets:\n  - name: a\n    dsn: host=x\n    proxied: yes\n") ==
        "/etc/pgwatchdog.yaml:4: proxied: expected true or false, got 'yes'");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
