// Bad input at start-up: a one-line error naming what is wrong, exit 2, nothing connected.
#include <doctest/doctest.h>

#include "support/daemon_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::DaemonProcess;

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;
};

Outcome run_daemon(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  DaemonProcess daemon(PGWD_DAEMON_BINARY, std::move(args), std::move(env));
  const auto code = daemon.wait_exit(10s);
  REQUIRE_MESSAGE(code.has_value(), "pgwatchdog did not exit:\n", daemon.output());
  return {*code, daemon.output()};
}

void expect_refusal(const Outcome& outcome, const std::string& expected) {
  CHECK(outcome.exit_code == 2);
  CHECK_MESSAGE(outcome.output.find(expected) != std::string::npos, outcome.output);
  CHECK(std::count(outcome.output.begin(), outcome.output.end(), '\n') == 1);  // one line
  CHECK(outcome.output.rfind("pgwatchdog: error: ", 0) == 0);
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture,
                  "bad input: each start-up error names its cause and exits 2 before connecting") {
  const std::string good = "  - name: ok\n    dsn: \"" + cluster.conninfo("ok") + "\"\n";
  const std::string file = config_path.string();

  SUBCASE("malformed DSN") {
    const auto o = run_daemon({"--target", "ok=" + cluster.conninfo("ok"), "--target",
                               "bad=host=x password=hunter2 oops"});
    expect_refusal(o, "--target: target 'bad': malformed conninfo");
    CHECK(o.output.find("hunter2") == std::string::npos);
  }
  SUBCASE("duplicate target name") {
    write_config("targets:\n" + good + good);
    expect_refusal(run_daemon({"--config", file}),
                   file + ":4: target 'ok' is defined twice (first at line 2)");
  }
  SUBCASE("unknown config key") {
    write_config("targets:\n" + good + "    probe_timout: 1s\n");
    expect_refusal(run_daemon({"--config", file}),
                   file + ":4: unknown key 'probe_timout' in targets[0]");
  }
  SUBCASE("bad duration") {
    write_config("defaults:\n  heartbeat: 5 seconds\ntargets:\n" + good);
    expect_refusal(run_daemon({"--config", file}),
                   file + ":2: heartbeat: bad duration '5 seconds'");
  }
  SUBCASE("connections: 0") {
    write_config("targets:\n" + good + "    connections: 0\n");
    expect_refusal(run_daemon({"--config", file}),
                   file + ":4: connections: '0' is out of range (1 to 1000)");
  }
  SUBCASE("missing file") {
    expect_refusal(run_daemon({"--config", file + ".missing"}),
                   "cannot read config file '" + file + ".missing'");
  }
  SUBCASE("listen address in use") {
    DaemonProcess holder(PGWD_DAEMON_BINARY,
                         {"--target", "ok=" + cluster.conninfo("holder"), "--listen", listen()});
    REQUIRE(holder.wait_for_output("serving metrics", 10s));
    expect_refusal(run_daemon({"--target", "ok=" + cluster.conninfo("ok"), "--listen", listen()}),
                   "listen: cannot listen on " + listen());
  }
  SUBCASE("no target at all") {
    expect_refusal(run_daemon({}), "no targets");
  }
  SUBCASE("bad flag value") {
    const auto o = run_daemon({"--target", "ok=" + cluster.conninfo("ok"), "--log-level", "loud"});
    CHECK(o.exit_code == 2);
    CHECK(o.output.find("--log-level") != std::string::npos);
  }
  SUBCASE("a password_file that does not exist") {
    write_config("targets:\n" + good + "    password_file: " + file + ".pw\n");
    expect_refusal(run_daemon({"--config", file}),
                   file + ":4: target 'ok': cannot read password_file '" + file +
                       ".pw': No such file or directory");
  }
  SUBCASE("dsn and dsn_file together") {
    write_config("targets:\n" + good + "    dsn_file: " + file + "\n");
    expect_refusal(run_daemon({"--config", file}),
                   file + ":4: target 'ok': dsn and dsn_file are mutually exclusive");
  }
  SUBCASE("an environment variable that is not set") {
    write_config("targets:\n  - name: ok\n    dsn: \"host=${PGWD_NO_SUCH_VARIABLE}\"\n");
    expect_refusal(run_daemon({"--config", file}),
                   file + ":3: dsn: environment variable 'PGWD_NO_SUCH_VARIABLE' is not set");
  }
  SUBCASE("--shard not below --total-shards") {
    expect_refusal(run_daemon({"--target", "ok=" + cluster.conninfo("ok"), "--shard", "2",
                               "--total-shards", "2"}),
                   "--shard: 2 is not below --total-shards 2 (shards are 0 to 1)");
  }
  SUBCASE("--total-shards 0 or not a number, --shard alone") {
    const std::string target = "ok=" + cluster.conninfo("ok");
    expect_refusal(run_daemon({"--target", target, "--shard", "0", "--total-shards", "0"}),
                   "--total-shards: expected a number from 1 to 1000, got '0'");
    expect_refusal(run_daemon({"--target", target, "--shard", "one", "--total-shards", "2"}),
                   "--shard: expected a shard number (0, 1, ...) or 'auto', got 'one'");
    expect_refusal(run_daemon({"--target", target, "--shard", "0"}),
                   "--shard needs --total-shards N");
  }
  SUBCASE("--shard auto on a host name without an ordinal") {
    expect_refusal(run_daemon({"--target", "ok=" + cluster.conninfo("ok"), "--shard", "auto",
                               "--total-shards", "3"},
                              {{"PGWATCHDOG_HOSTNAME", "watchdog-host"}}),
                   "--shard auto: the host name 'watchdog-host' does not end in -<ordinal>");
  }
  // Nothing connected in any case (the listen case's holder is another app name).
  CHECK(cluster.backend_pids("ok").empty());
}

TEST_CASE_FIXTURE(DaemonFixture, "bad input: help and version and a valid check-config exit 0") {
  auto help = run_daemon({"--help"});
  CHECK(help.exit_code == 0);
  for (const char* flag : {"--config", "--target", "--listen", "--log-level", "--log-format",
                           "--check-config", "--version", "--shard", "--total-shards"})
    CHECK_MESSAGE(help.output.find(flag) != std::string::npos, flag);
  auto version = run_daemon({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.output == "pgwatchdog " PGWD_PROJECT_VERSION "\n");
  write_config("targets:\n  - name: ok\n    dsn: \"" + cluster.conninfo("ok") + "\"\n");
  auto check = run_daemon(
      {"--config", config_path.string(), "--check-config", "--target", "extra=host=/tmp"});
  CHECK(check.exit_code == 0);
  CHECK(check.output.find("name: \"ok\"") != std::string::npos);
  CHECK(check.output.find("name: \"extra\"") != std::string::npos);
  CHECK(cluster.backend_pids("ok").empty());
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
