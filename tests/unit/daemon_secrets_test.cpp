// Secrets that live outside the config file: password_file, dsn_file and ${ENV} references.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "daemon/effective_config.hpp"
#include "daemon/env_references.hpp"
#include "daemon/target_reload.hpp"
#include "support/scratch_directory.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;
using namespace pgwd::daemon;
using pgwd::testing::ScratchDirectory;

namespace {

EnvironmentLookup environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::string& yaml, const EnvironmentLookup& env = environment({})) {
  try {
    (void)parse_config(yaml, "w.yaml", env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

const TargetOptions& only_target(const DaemonConfig& config) {
  REQUIRE(config.targets.size() == 1);
  return config.targets[0];
}

}  // namespace

TEST_CASE("env references: ${NAME} is replaced, $${ is a literal ${, any other $ is itself") {
  const auto env = environment({{"HOST", "db1"}, {"EMPTY", ""}, {"A_1", "x${HOST}y"}});
  CHECK(expand_env_references("host=${HOST} port=5432", env) == "host=db1 port=5432");
  CHECK(expand_env_references("${HOST}${HOST}", env) == "db1db1");
  CHECK(expand_env_references("[${EMPTY}]", env) == "[]");  // set to "": not an error
  CHECK(expand_env_references("${A_1}", env) == "x${HOST}y");  // a value is not expanded again
  CHECK(expand_env_references("$${HOST}", env) == "${HOST}");
  CHECK(expand_env_references("$$${HOST}", env) == "$${HOST}");
  CHECK(expand_env_references("DO $$ BEGIN END $$; SELECT $1, $HOST, 5$", env) ==
        "DO $$ BEGIN END $$; SELECT $1, $HOST, 5$");
  CHECK_THROWS_WITH_AS(expand_env_references("${NOPE}", env),
                       "environment variable 'NOPE' is not set", std::invalid_argument);
  for (const char* bad : {"${", "${}", "${HOST", "${1X}", "${A-B}", "x ${ HOST}"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(expand_env_references(bad, env), std::invalid_argument);
  }
}

TEST_CASE("env references: escaping then expanding gives the text back") {
  const auto env = environment({});
  for (const char* text : {"", "plain", "${X}", "$${X}", "$$${X}", "${", "a$b${c}$${d}$", "$$"}) {
    CAPTURE(text);
    CHECK(expand_env_references(escape_env_references(text), env) == text);
  }
}

TEST_CASE("env references: in every kind of value, with the key and line of a missing one") {
  const auto env = environment({{"DB_HOST", "db.internal"}, {"N", "3"}, {"T", "2s"},
                                {"CHANNEL", "jobs"}, {"PW", "s3cr3t"}});
  const DaemonConfig config = parse_config(R"(log_level: info
defaults:
  probe_timeout: ${T}
targets:
  - name: app-${N}
    dsn: "host=${DB_HOST} user=w password=${PW}"
    connections: ${N}
    listen_channels: ["${CHANNEL}"]  # quoted: { is special in [ ]
    probe_query: "SELECT $$${N}$$"
)",
                                           "w.yaml", env);
  const TargetOptions& t = only_target(config);
  CHECK(t.name == "app-3");
  CHECK(t.conninfo == "host=db.internal user=w password=s3cr3t");
  CHECK(t.connections == 3);
  CHECK(t.probe_timeout == std::chrono::seconds(2));
  CHECK(t.listen_channels == std::vector<std::string>{"jobs"});
  CHECK(t.probe_query == "SELECT $${N}$$");

  CHECK(error_of("targets:\n  - name: a\n    dsn: \"host=${DB_HOST}\"\n") ==
        "w.yaml:3: dsn: environment variable 'DB_HOST' is not set");
  CHECK(error_of("listen: \"${ADDR}:1\"\n") ==
        "w.yaml:1: listen: environment variable 'ADDR' is not set");
  CHECK(error_of("targets:\n  - name: a\n    dsn: x\n    listen_channels: [a, \"${C}\"]\n") ==
        "w.yaml:4: listen_channels[1]: environment variable 'C' is not set");
  CHECK(error_of("defaults:\n  connections: ${N\n").starts_with(
      "w.yaml:2: connections: bad environment variable reference at character 1"));
}

TEST_CASE("check-config output escapes ${ so that it loads back to the same values") {
  const auto env = environment({{"V", "${NOT_A_REFERENCE}"}});
  const DaemonConfig config =
      parse_config("targets:\n  - name: \"n$${x}\"\n    dsn: \"host=h application_name=${V}\"\n",
                   "w.yaml", env);
  CHECK(only_target(config).name == "n${x}");
  const std::string printed = to_yaml(config);
  const DaemonConfig reloaded = parse_config(printed, "printed.yaml", environment({}));
  CHECK(only_target(reloaded).name == "n${x}");
  CHECK(only_target(reloaded).conninfo == redact_conninfo(only_target(config).conninfo));
}

TEST_CASE("password_file: its content without the trailing newline is the password") {
  const ScratchDirectory dir;
  const std::string lf = dir.write("lf", "pa ss'w\\rd\n");
  const std::string crlf = dir.write("crlf", "pa ss'w\\rd\r\n");
  const std::string bare = dir.write("bare", "pa ss'w\\rd");
  for (const std::string& file : {lf, crlf, bare}) {
    CAPTURE(file);
    const DaemonConfig config = parse_config("targets:\n  - name: a\n    dsn: \"host=h user=u\"\n"
                                             "    password_file: " + file + "\n",
                                             "w.yaml");
    const TargetOptions& t = only_target(config);
    CHECK(t.conninfo == "user='u' host='h' password='pa ss\\'w\\\\rd'");
    CHECK(config.sources.at("a").password_file == file);
    // --check-config names the file and shows no content.
    const std::string printed = to_yaml(config);
    CHECK(printed.find("    # password_file: \"" + file + "\"\n") != std::string::npos);
    CHECK(printed.find("pa ss") == std::string::npos);
  }
}

TEST_CASE("password_file: a URI keeps every setting, and the defaults' file is inherited") {
  const ScratchDirectory dir;
  const std::string file = dir.write("pw", "hunter2\n");
  const DaemonConfig config = parse_config("defaults:\n  password_file: " + file + R"(
targets:
  - name: uri
    dsn: "postgresql://u@db1:5433/app?sslmode=disable"
  - name: own
    dsn: "host=h user=u password=inline"
  - name: none
    dsn: "host=h user=u"
    password_file: ""
)",
                                           "w.yaml");
  REQUIRE(config.targets.size() == 3);
  CHECK(config.targets[0].conninfo ==
        "user='u' dbname='app' host='db1' port='5433' sslmode='disable' password='hunter2'");
  CHECK(config.sources.at("uri").password_file == file);
  // A DSN that sets its own password keeps it; the defaults' file is for the others.
  CHECK(config.targets[1].conninfo == "host=h user=u password=inline");
  CHECK(config.sources.count("own") == 0);
  // "" on a target: no password_file, not even the defaults'.
  CHECK(config.targets[2].conninfo == "host=h user=u");
  CHECK(config.default_sources.password_file == file);

  // --target inherits it too.
  const ScratchDirectory cli_dir;
  const std::string yaml = cli_dir.write("c.yaml", "defaults:\n  password_file: " + file + "\n");
  CommandLine cli;
  cli.config_path = yaml;
  cli.targets = {{"flag", "host=h user=u"}};
  const DaemonConfig effective = effective_config(cli);
  CHECK(only_target(effective).conninfo == "user='u' host='h' password='hunter2'");
  CHECK(to_yaml(effective).find("# password_file: \"" + file + "\"") != std::string::npos);
}

TEST_CASE("password_file: a readable file owned by someone else with any mode is fine") {
  // A Kubernetes Secret volume is root-owned, 0644 (or 0440 with an fsGroup): unlike libpq's
  // passfile, no owner or mode is required, only that the file can be read.
  const ScratchDirectory dir;
  const std::string file = dir.write("pw", "k8s\n");
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read);
  if (geteuid() == 0) REQUIRE(chown(file.c_str(), 65534, 65534) == 0);
  const DaemonConfig config = parse_config(
      "targets:\n  - name: a\n    dsn: host=h\n    password_file: " + file + "\n", "w.yaml");
  CHECK(only_target(config).conninfo == "host='h' password='k8s'");
}

TEST_CASE("password_file: missing, empty, a directory, a FIFO or two passwords are errors") {
  const ScratchDirectory dir;
  const std::string empty = dir.write("empty", "\n");
  const std::string nul = dir.write("nul", std::string("a\0b", 3));
  const std::string fifo = dir.path("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const std::string ok = dir.write("ok", "pw");
  const auto target = [](const std::string& file, const std::string& dsn = "host=h") {
    return "targets:\n  - name: db1\n    dsn: \"" + dsn + "\"\n    password_file: " + file + "\n";
  };
  CHECK(error_of(target(dir.path("missing"))) ==
        "w.yaml:4: target 'db1': cannot read password_file '" + dir.path("missing") +
            "': No such file or directory");
  CHECK(error_of(target(empty)) == "w.yaml:4: target 'db1': password_file '" + empty +
                                       "' is empty");
  CHECK(error_of(target(nul)) == "w.yaml:4: target 'db1': password_file '" + nul +
                                     "' contains a NUL byte");
  CHECK(error_of(target(dir.path(""))).ends_with("': Is a directory"));
  CHECK(error_of(target(fifo)) == "w.yaml:4: target 'db1': cannot read password_file '" + fifo +
                                      "': not a regular file (a FIFO)");
  CHECK(error_of(target(ok, "host=h password=other")) ==
        "w.yaml:4: target 'db1': the dsn sets a password and password_file gives one too; "
        "remove one");
  CHECK(error_of("defaults:\n  password_file: " + dir.path("gone") + "\n") ==
        "w.yaml:2: defaults: cannot read password_file '" + dir.path("gone") +
            "': No such file or directory");
}

TEST_CASE("dsn_file: the whole DSN from a file, never echoed, exclusive with dsn") {
  const ScratchDirectory dir;
  const std::string dsn = dir.write("dsn", "host=db1 user=u password=t0ps3cret\n");
  const std::string junk = dir.write("junk", "t0ps3cret no equals sign\n");
  const std::string pw = dir.write("pw", "frompwfile");
  const DaemonConfig config =
      parse_config("targets:\n  - name: a\n    dsn_file: " + dsn + "\n", "w.yaml");
  CHECK(only_target(config).conninfo == "host=db1 user=u password=t0ps3cret");
  const std::string printed = to_yaml(config);
  CHECK(printed.find("    # dsn_file: \"" + dsn + "\"\n") != std::string::npos);
  CHECK(printed.find("t0ps3cret") == std::string::npos);

  const DaemonConfig both = parse_config("targets:\n  - name: a\n    dsn_file: " +
                                             dir.write("nopw", "host=db1 user=u") +
                                             "\n    password_file: " + pw + "\n",
                                         "w.yaml");
  CHECK(only_target(both).conninfo == "user='u' host='db1' password='frompwfile'");

  CHECK(error_of("targets:\n  - name: a\n    dsn: host=x\n    dsn_file: " + dsn + "\n") ==
        "w.yaml:4: target 'a': dsn and dsn_file are mutually exclusive; give one of them");
  const std::string bad = error_of("targets:\n  - name: a\n    dsn_file: " + junk + "\n");
  CHECK(bad == "w.yaml:3: target 'a': the content of dsn_file '" + junk +
                   "' is not a valid libpq conninfo (not shown: it is secret)");
  CHECK(error_of("targets:\n  - name: a\n    dsn_file: " + dir.path("none") + "\n") ==
        "w.yaml:3: target 'a': cannot read dsn_file '" + dir.path("none") +
            "': No such file or directory");
}

TEST_CASE("reload: a rotated password_file restarts its target, an untouched one stays") {
  const ScratchDirectory dir;
  const std::string a = dir.write("a", "one\n"), b = dir.write("b", "two\n");
  const std::string yaml = "targets:\n  - name: a\n    dsn: host=h\n    password_file: " + a +
                           "\n  - name: b\n    dsn: host=h\n    password_file: " + b + "\n";
  const DaemonConfig before = parse_config(yaml, "w.yaml");
  dir.write("a", "rotated\n");
  const DaemonConfig after = parse_config(yaml, "w.yaml");
  const ReloadPlan plan = plan_reload(before.targets, after.targets);
  REQUIRE(plan.restart.size() == 1);
  CHECK(plan.restart[0].name == "a");
  CHECK(plan.unchanged == std::vector<std::string>{"b"});
  // A file that has gone missing: the reload is refused (and the daemon keeps `before`).
  std::filesystem::remove(b);
  CHECK_THROWS_AS(parse_config(yaml, "w.yaml"), ConfigError);
}

TEST_CASE("password_file: a malformed dsn is reported as such, with or without a password file") {
  const ScratchDirectory dir;
  const std::string file = dir.write("pw", "pw\n");
  CHECK(error_of("defaults:\n  password_file: " + file +
                 "\ntargets:\n  - name: a\n    dsn: \"host=h oops\"\n")
            .starts_with("w.yaml:4: target 'a': malformed conninfo"));
  CHECK(error_of("targets:\n  - name: a\n    dsn: \"host=h oops\"\n    password_file: " + file +
                 "\n")
            .starts_with("w.yaml:2: target 'a': malformed conninfo"));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
