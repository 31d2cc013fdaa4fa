// End-to-end: secrets from files and the environment (password_file, dsn_file, ${ENV}), and
// libpq's own passfile=/PGPASSFILE, against a cluster with SCRAM password authentication.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "support/daemon_fixture.hpp"
#include "support/subprocess.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::DaemonProcess;

namespace {

std::string up(const std::string& target) { return "pgwatchdog_up{target=\"" + target + "\"}"; }

std::string healthy(const std::string& target) {
  return "pgwatchdog_connections{state=\"healthy\",target=\"" + target + "\"}";
}

std::string auth_failures(const std::string& target) {
  return "pgwatchdog_connect_failures_total{cause=\"auth_failed\",target=\"" + target + "\"}";
}

// The daemon's own files next to the config: written by the test, read by the daemon.
struct SecretsFixture : DaemonFixture {
  std::filesystem::path dir = config_path.parent_path();

  std::string write_file(const std::string& name, const std::string& content,
                         std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                                       std::filesystem::perms::owner_write) {
    const std::filesystem::path file = dir / name;
    std::ofstream(file, std::ios::trunc) << content;
    std::filesystem::permissions(file, mode);
    return file.string();
  }

  /// The cluster's conninfo without a password.
  std::string dsn_without_password(const std::string& application_name) const {
    return "host=" + cluster.host() + " port=" + std::to_string(cluster.port()) + " user=" +
           cluster.user() + " dbname=postgres application_name=" + application_name;
  }

  /// A ~/.pgpass line for the cluster (':' and '\' escaped as libpq wants).
  std::string pgpass_line(const std::string& password) const {
    std::string escaped;
    for (char c : password) {
      if (c == ':' || c == '\\') escaped += '\\';
      escaped += c;
    }
    return cluster.host() + ":" + std::to_string(cluster.port()) + ":*:" + cluster.user() + ":" +
           escaped + "\n";
  }

  void start_with_env(std::vector<std::string> args, std::map<std::string, std::string> env) {
    daemon.emplace(PGWD_DAEMON_BINARY, std::move(args), std::move(env));
    if (!daemon->wait_for_output("serving metrics", 10s))
      throw std::runtime_error("pgwatchdog did not start:\n" + daemon->output());
  }
};

}  // namespace

TEST_CASE_FIXTURE(SecretsFixture,
                  "secrets: password_file, dsn_file and ${ENV} connect and never show anywhere") {
  const std::string password = cluster.password();
  // A Secret volume: the file belongs to another user and is world-readable; only readability
  // counts.
  const std::string password_file = write_file(
      "db-password", password + "\n",
      std::filesystem::perms::owner_read | std::filesystem::perms::group_read |
          std::filesystem::perms::others_read);
  REQUIRE(chown(password_file.c_str(), 65534, 65534) == 0);
  const std::string dsn_file =
      write_file("db-dsn", cluster.conninfo("fromdsnfile") + "\n");
  write_config("targets:\n"
               "  - name: frompwfile\n"
               "    dsn: \"" + dsn_without_password("frompwfile") + "\"\n"
               "    password_file: " + password_file + "\n"
               "  - name: fromdsnfile\n"
               "    dsn_file: " + dsn_file + "\n"
               "  - name: fromenv\n"
               "    dsn: \"" + dsn_without_password("fromenv") + " password=${PGWD_TEST_PASSWORD}\"\n");
  start_with_env({"--config", config_path.string(), "--listen", listen(), "--log-level", "trace"},
                 {{"PGWD_TEST_PASSWORD", password}});
  for (const char* target : {"frompwfile", "fromdsnfile", "fromenv"}) {
    CAPTURE(target);
    REQUIRE(wait_metric(up(target), 1, 10s));
  }
  // A terminate and a reconnect log the conninfo (redacted) and the server's words.
  REQUIRE(cluster.terminate_backends("frompwfile") == 1);
  REQUIRE(wait_metric(
      "pgwatchdog_reconnects_total{result=\"success\",target=\"frompwfile\"}", 1, 5s));

  const std::string log = daemon->output();
  CHECK(log.find("password='***'") != std::string::npos);
  CHECK(log.find(password) == std::string::npos);
  CHECK(scrape().find(password) == std::string::npos);
  CHECK(daemon->command_line().find(password) == std::string::npos);

  const auto check = pgwd::testing::run_process(
      {"env", "PGWD_TEST_PASSWORD=" + password, PGWD_DAEMON_BINARY, "--config",
       config_path.string(), "--check-config"});
  CHECK(check.exit_code == 0);
  CHECK(check.output.find("# password_file: \"" + password_file + "\"") != std::string::npos);
  CHECK(check.output.find("# dsn_file: \"" + dsn_file + "\"") != std::string::npos);
  CHECK(check.output.find("password='***'") != std::string::npos);
  CHECK(check.output.find(password) == std::string::npos);

  // Without the variable, --check-config names it and the line.
  const auto unset = pgwd::testing::run_process(
      {PGWD_DAEMON_BINARY, "--config", config_path.string(), "--check-config"});
  CHECK(unset.exit_code == 2);
  CHECK(unset.output.find(config_path.string() +
                          ":8: dsn: environment variable 'PGWD_TEST_PASSWORD' is not set") !=
        std::string::npos);
}

TEST_CASE_FIXTURE(SecretsFixture,
                  "secrets: SIGHUP re-reads password files: a rotated one restarts its target") {
  const std::string file_a = write_file("a-password", cluster.password() + "\n");
  const std::string file_b = write_file("b-password", cluster.password() + "\n");
  write_config("targets:\n"
               "  - name: rot\n    dsn: \"" + dsn_without_password("rot") +
               "\"\n    password_file: " + file_a + "\n"
               "  - name: same\n    dsn: \"" + dsn_without_password("same") +
               "\"\n    password_file: " + file_b + "\n");
  start_with_config();
  REQUIRE(wait_metric(healthy("rot"), 1, 10s));
  REQUIRE(wait_metric(healthy("same"), 1, 10s));
  const std::vector<int> rot_before = cluster.backend_pids("rot");
  const std::vector<int> same_before = cluster.backend_pids("same");

  // The password is rotated on the server and in one file (as a Secret update does).
  const std::string rotated = "R0tated-" + std::to_string(metrics_port);
  cluster.execute("ALTER ROLE " + cluster.user() + " PASSWORD '" + rotated + "'");
  write_file("a-password", rotated + "\n");
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("0 added, 0 removed, 1 restarted, 1 unchanged", 5s));
  REQUIRE(wait_metric(healthy("rot"), 1, 10s));
  CHECK(cluster.backend_pids("rot") != rot_before);        // reconnected, with the new password
  CHECK(cluster.backend_pids("same") == same_before);      // untouched
  CHECK(metric(auth_failures("rot")) == 0);

  // A password file that is gone: the reload is refused, everything keeps running.
  std::filesystem::remove(file_b);
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("reload refused, still running the previous configuration", 5s));
  CHECK(daemon->output().find("target 'same': cannot read password_file '" + file_b +
                              "': No such file or directory") != std::string::npos);
  CHECK(cluster.backend_pids("same") == same_before);
  CHECK(daemon->output().find(rotated) == std::string::npos);
  CHECK(daemon->running());
}

TEST_CASE_FIXTURE(SecretsFixture,
                  "secrets: libpq's passfile= and PGPASSFILE work, and a passfile readable by others "
                  "is ignored by libpq") {
  const std::string pgpass = write_file("pgpass", pgpass_line(cluster.password()));  // 0600
  const std::string open_pgpass = write_file(
      "pgpass-0644", pgpass_line(cluster.password()),
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
          std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  write_config("targets:\n"
               "  - name: passfile\n    dsn: \"" + dsn_without_password("passfile") +
               " passfile=" + pgpass + "\"\n"
               "  - name: envpassfile\n    dsn: \"" + dsn_without_password("envpassfile") + "\"\n"
               "  - name: openpassfile\n    dsn: \"" + dsn_without_password("openpassfile") +
               " passfile=" + open_pgpass + "\"\n");
  start_with_env({"--config", config_path.string(), "--listen", listen(), "--log-level", "debug"},
                 {{"PGPASSFILE", pgpass}});
  CHECK(wait_metric(up("passfile"), 1, 10s));
  CHECK(wait_metric(up("envpassfile"), 1, 10s));
  // libpq skips a password file with group or world access (it writes a WARNING to stderr
  // itself) and then has no password to send: the attempt fails in libpq, before the server.
  CHECK_MESSAGE(waiter.run_until(
                    [&] {
                      return metric("pgwatchdog_connect_failures_total{cause=\"connect_failed\","
                                    "target=\"openpassfile\"}") >= 1;
                    },
                    10s),
                daemon->output());
  CHECK(metric(up("openpassfile")) == 0);
  CHECK(daemon->output().find("has group or world access") != std::string::npos);
  CHECK(daemon->output().find("fe_sendauth: no password supplied") != std::string::npos);
  CHECK(daemon->output().find(cluster.password()) == std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
