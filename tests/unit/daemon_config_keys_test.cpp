// The keys of the config file are declared once (daemon/config_keys.hpp): every declared key is
// read from a file, checked against its declared range and printed by --check-config; every
// field of TargetOptions has a key; and a DSN is parsed by libpq once on its way in. (That the
// docs' key tables are the declarations' is the test "docs: config keys".)
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "daemon/command_line.hpp"
#include "daemon/config_keys.hpp"
#include "daemon/duration.hpp"
#include "daemon/effective_config.hpp"
#include "support/scratch_directory.hpp"

using namespace pgwd;
using namespace pgwd::daemon;
using pgwd::testing::ScratchDirectory;

// The unit tests are linked with --wrap=PQconninfoParse (tests/CMakeLists.txt): every call of
// libpq's conninfo parser in the library and the daemon comes here first and is counted, then
// runs as it is.
namespace {
int conninfo_parses = 0;
}  // namespace

extern "C" PQconninfoOption* __real_PQconninfoParse(const char* conninfo, char** errmsg);
extern "C" PQconninfoOption* __wrap_PQconninfoParse(const char* conninfo, char** errmsg) {
  ++conninfo_parses;
  return __real_PQconninfoParse(conninfo, errmsg);
}

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID). The linker's wrapper above stays global.
namespace {
namespace PGWD_TEST_FILE_ID {

namespace {

// A value for each key other than its default, as written in the file and as --check-config
// shows it. A key declared without one here fails the first test below.
struct Example {
  std::string written;
  std::string shown;
};

const std::map<std::string, Example, std::less<>>& examples() {
  static const std::map<std::string, Example, std::less<>> values{
      {"listen", {"\"0.0.0.0:9999\"", "\"0.0.0.0:9999\""}},
      {"log_level", {"debug", "debug"}},
      {"log_format", {"json", "json"}},
      {"per_target_histograms", {"false", "false"}},
      {"connector_threads", {"7", "7"}},
      {"name", {"primary", "\"primary\""}},
      // In libpq's order, with the defaults' password_file added and redacted.
      {"dsn", {"\"host=db1 user=w\"", "\"user='w' password='***' host='db1'\""}},
      {"dsn_file", {"DSN_FILE", "\"DSN_FILE\""}},
      {"password_file", {"PASSWORD_FILE", "\"PASSWORD_FILE\""}},
      {"connections", {"3", "3"}},
      {"probe_query", {"\"SELECT 2\"", "\"SELECT 2\""}},
      {"probe_timeout", {"7s", "7s"}},
      {"connect_timeout", {"4s", "4s"}},
      {"heartbeat", {"1m", "1m"}},
      {"heartbeat_query", {"\"SELECT 3\"", "\"SELECT 3\""}},
      {"pooler", {"pgbouncer", "pgbouncer"}},
      {"proxied", {"true", "true"}},
      {"in_front_of", {"other", "\"other\""}},
      {"keepalives_idle", {"6s", "6s"}},
      {"keepalives_interval", {"3s", "3s"}},
      {"keepalives_count", {"4", "4"}},
      {"tcp_user_timeout", {"12s", "12s"}},
      {"backoff_initial", {"250ms", "250ms"}},
      {"backoff_max", {"2m", "2m"}},
      {"scout_interval", {"1500ms", "1500ms"}},
      {"listen_channels", {"[jobs, alerts]", "[\"jobs\", \"alerts\"]"}},
  };
  return values;
}

const Example& example(std::string_view key) {
  const auto found = examples().find(key);
  REQUIRE(found != examples().end());  // a declared key needs an example above
  return found->second;
}

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "k.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// Each defaults-and-targets key set under `defaults:`, each key of the targets only on target
// `primary`, every top-level key at the top. A second target has what excludes something else:
// dsn_file (not with dsn) and pooler (not with heartbeat_query).
std::string file_with_every_key(const std::string& dsn_file, const std::string& password_file) {
  const auto value = [&](std::string_view key) {
    std::string written = example(key).written;
    if (written == "DSN_FILE") return dsn_file;
    if (written == "PASSWORD_FILE") return password_file;
    return written;
  };
  std::string yaml;
  for (const TopLevelKey& key : top_level_keys())
    if (key.show != nullptr) yaml += std::string(key.name) + ": " + value(key.name) + "\n";
  yaml += "defaults:\n";
  for (const TargetKey& key : target_keys())
    if (key.place == KeyPlace::defaults_and_targets && key.name != "pooler")
      yaml += "  " + std::string(key.name) + ": " + value(key.name) + "\n";
  yaml += "targets:\n  - name: other\n    dsn_file: " + value("dsn_file") +
          "\n    pooler: " + value("pooler") + "\n    heartbeat_query: \"\"\n";
  std::string indent = "  - ";
  for (const TargetKey& key : target_keys())
    if (key.place == KeyPlace::targets_only && key.name != "dsn_file") {
      yaml += indent + std::string(key.name) + ": " + value(key.name) + "\n";
      indent = "    ";
    }
  return yaml;
}

template <class Key, class Shown>
void check_example_is_not_the_default(const Key& key, const Shown& default_config) {
  CAPTURE(key.name);
  if (key.show == nullptr) return;  // a section: printed its own way
  const Example& value = example(key.name);
  CHECK(key.show(default_config) != std::optional<std::string>(value.shown));
}

// Whether the --check-config output has the line `key: shown` (as a comment for a secret file).
bool printed(const std::string& output, std::string_view key, const std::string& shown,
             bool as_comment) {
  const std::string line = (as_comment ? "# " : "") + std::string(key) + ": " + shown + "\n";
  return output.find(line) != std::string::npos;
}

// How many fields an aggregate has: the most initialisers T{...} takes.
struct AnyField {
  template <class T>
  operator T() const;  // never defined: only asked whether it would convert
};

template <class T, class... Fields>
constexpr std::size_t field_count() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; })
    return field_count<T, Fields..., AnyField>();
  else
    return sizeof...(Fields);
}

}  // namespace

TEST_CASE("config keys: every declared key is read from the file and printed by --check-config") {
  const DaemonConfig no_file;
  for (const TopLevelKey& key : top_level_keys()) check_example_is_not_the_default(key, no_file);
  const TargetOptions options;
  const SecretSources sources;
  for (const TargetKey& key : target_keys())
    check_example_is_not_the_default(key, ShownTarget{options, sources});
  std::set<std::string_view> declared;
  for (const TopLevelKey& key : top_level_keys()) declared.insert(key.name);
  for (const TargetKey& key : target_keys()) declared.insert(key.name);
  for (const auto& [name, example] : examples()) {
    CAPTURE(name);
    CHECK(declared.contains(name));  // an example of a key that is not declared
  }

  const ScratchDirectory dir;
  const std::string dsn_file = dir.write("dsn", "host=db2 user=w\n");
  const std::string password_file = dir.write("password", "s3cret\n");
  const DaemonConfig config = parse_config(file_with_every_key(dsn_file, password_file), "k.yaml");
  REQUIRE(config.targets.size() == 2);
  const std::string output = to_yaml(config);
  CAPTURE(output);
  CHECK(output.find("s3cret") == std::string::npos);
  for (const TopLevelKey& key : top_level_keys()) {
    CAPTURE(key.name);
    // Only the sections are printed their own way: `defaults:` folded into each target.
    if (key.type == ValueType::map || key.type == ValueType::list) continue;
    REQUIRE(static_cast<bool>(key.show));
    CHECK(printed(output, key.name, example(key.name).shown, false));
  }
  for (const TargetKey& key : target_keys()) {
    CAPTURE(key.name);
    std::string shown = example(key.name).shown;
    if (shown == "\"DSN_FILE\"") shown = '"' + dsn_file + '"';
    if (shown == "\"PASSWORD_FILE\"") shown = '"' + password_file + '"';
    CHECK(printed(output, key.name, shown, key.shown_as_comment));
  }
  // What --check-config prints loads back to the same configuration, but for the secret files'
  // paths, which are comments (their content is in the dsn, whose password is now ***).
  std::string without_comments;
  for (std::size_t at = 0; at < output.size();) {
    const std::size_t end = output.find('\n', at) + 1;
    const std::string line = output.substr(at, end - at);
    if (line.find("# ") == std::string::npos) without_comments += line;
    at = end;
  }
  const DaemonConfig reloaded = parse_config(output, "printed");
  CHECK(to_yaml(reloaded) == without_comments);
  CHECK(reloaded.connector_threads == config.connector_threads);
}

TEST_CASE("config keys: every field of TargetOptions is a key of a target") {
  // dsn_file and password_file are the daemon's: they end up in the conninfo.
  const auto keys = std::count_if(target_keys().begin(), target_keys().end(), [](const auto& k) {
    return k.name != "dsn_file" && k.name != "password_file";
  });
  CHECK(field_count<TargetOptions>() == static_cast<std::size_t>(keys));
}

TEST_CASE(
    "config keys: a number or duration outside its declared range is refused with the range") {
  const auto bound = [](const auto& key, long long value) {
    return key.type == ValueType::duration ? format_duration(std::chrono::milliseconds(value))
                                           : std::to_string(value);
  };
  const auto check_range = [&](const auto& key, const std::string& prefix,
                               const std::string& suffix) {
    if (key.type != ValueType::integer && key.type != ValueType::duration) return;
    CAPTURE(key.name);
    const std::string range =
        "is out of range (" + bound(key, key.range.min) + " to " + bound(key, key.range.max) + ")";
    for (long long outside : {key.range.min - 1, key.range.max + 1}) {
      if (outside < 0 && key.type == ValueType::duration) continue;  // no negative duration
      const std::string written = outside < 0 ? "-1" : bound(key, outside);
      const std::string error = error_of(prefix + std::string(key.name) + ": " + written + suffix);
      CHECK(error.find(std::string(key.name) + ": '" + written + "' " + range) !=
            std::string::npos);
    }
    // (backoff_max at its least is below the default backoff_initial: refused, but not for its
    // range.)
    for (long long inside : {key.range.min, key.range.max})
      CHECK(error_of(prefix + std::string(key.name) + ": " + bound(key, inside) + suffix)
                .find("out of range") == std::string::npos);
  };
  for (const TopLevelKey& key : top_level_keys()) check_range(key, "", "\n");
  for (const TargetKey& key : target_keys())
    if (key.place == KeyPlace::defaults_and_targets)
      check_range(key, "targets:\n  - name: a\n    dsn: host=x\n    ", "\n");
}

TEST_CASE("config keys: the docs' tables name every declared key, and nothing else") {
  const std::string tables = config_key_tables();
  std::size_t rows = 0;
  for (std::size_t at = tables.find("\n| `"); at != std::string::npos;
       at = tables.find("\n| `", at + 1))
    ++rows;
  CHECK(rows == top_level_keys().size() + target_keys().size());
  for (const TopLevelKey& key : top_level_keys())
    CHECK(tables.find("| `" + std::string(key.name) + "` |") != std::string::npos);
  for (const TargetKey& key : target_keys())
    CHECK(tables.find("| `" + std::string(key.name) + "` |") != std::string::npos);
}

TEST_CASE("config keys: a DSN from dsn_file with a password_file is parsed by libpq once") {
  const ScratchDirectory dir;
  const std::string dsn_file =
      dir.write("dsn", "postgresql://watchdog@db1.internal:5432/app?application_name=x\n");
  const std::string password_file = dir.write("password", "s3cret\n");
  const std::string yaml = "targets:\n  - name: primary\n    dsn_file: " + dsn_file +
                           "\n    password_file: " + password_file + "\n";
  conninfo_parses = 0;
  const DaemonConfig config = parse_config(yaml, "k.yaml");
  CHECK(conninfo_parses == 1);
  REQUIRE(config.targets.size() == 1);
  CHECK(config.targets[0].conninfo.find("password='s3cret'") != std::string::npos);

  // The defaults' password_file, inherited by a dsn and by a --target.
  const std::string with_defaults = "defaults:\n  password_file: " + password_file +
                                    "\ntargets:\n  - name: a\n    dsn: host=db1\n";
  conninfo_parses = 0;
  (void)parse_config(with_defaults, "k.yaml");
  CHECK(conninfo_parses == 1);

  const std::string config_path = dir.write("pgwatchdog.yaml", with_defaults);
  CommandLine cli;
  cli.config_path = config_path;
  cli.targets.emplace_back("b", "host=db2 dbname=app");
  conninfo_parses = 0;
  const DaemonConfig effective = effective_config(cli);
  CHECK(conninfo_parses == 2);  // one for each target: a from the file, b from the command line
  REQUIRE(effective.targets.size() == 2);
  CHECK(effective.targets[1].conninfo.find("password='s3cret'") != std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
