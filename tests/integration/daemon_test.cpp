// End-to-end: the pgwatchdog binary, a real cluster, HTTP scrapes (the contract of docs/daemon.md).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <vector>

#include "support/daemon_fixture.hpp"
#include "support/poll_deadline.hpp"
#include "support/process_exits.hpp"
#include "support/sched_stat.hpp"
#include "support/subprocess.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::at_most_every;

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::ShutdownMode;

namespace {

std::string up(const std::string& target) {
  return "pgwatchdog_up{target=\"" + target + "\"}";
}

std::string series(const std::string& name, const std::string& target, const std::string& label,
                   const std::string& value) {
  // prometheus-cpp writes labels sorted by name; every label used here sorts before `target`.
  return name + "{" + label + "=\"" + value + "\",target=\"" + target + "\"}";
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: the first scrape has every core series with zeros and passes promtool") {
  start({"--target", "main=" + cluster.conninfo("main"), "--listen", listen()});
  const std::string text = scrape();
  CHECK(text.find("pgwatchdog_build_info{") != std::string::npos);
  for (const char* cause : {"server_shutdown", "immediate_shutdown", "server_crash",
                            "pooler_server_lost", "pooler_login_failing", "pooler_queue_timeout",
                            "closed", "timed_out", "probe_failed", "probe_timeout"})
    CHECK(sample(text, series("pgwatchdog_disconnects_total", "main", "cause", cause)) == 0);
  for (const char* result : {"success", "failure"})
    CHECK(sample(text, series("pgwatchdog_reconnects_total", "main", "result", result)) == 0);
  for (const char* result : {"error", "timeout"})
    CHECK(sample(text, series("pgwatchdog_probes_total", "main", "result", result)) == 0);
  // The default heartbeat (5 s, first at a random point of the period) may have answered by now.
  CHECK(sample(text, series("pgwatchdog_probes_total", "main", "result", "ok")).has_value());
  CHECK(sample(text, "pgwatchdog_wakeups_total{target=\"main\"}") == 0);
  CHECK(sample(text, "pgwatchdog_notifications_total{target=\"main\"}") == 0);
  CHECK(sample(text, up("main")).has_value());

  const auto scrape_file = config_path.parent_path() / "scrape.txt";
  std::ofstream(scrape_file) << text;
  const auto promtool =
      pgwd::testing::run_process({"sh", "-c", "promtool check metrics < " + scrape_file.string()});
  CHECK(promtool.exit_code == 0);
  CHECK(promtool.output == "");
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: terminated backends are counted by cause and reconnected") {
  write_config("targets:\n" + target_yaml("term", 3));
  start_with_config();
  REQUIRE(wait_metric(series("pgwatchdog_connections", "term", "state", "healthy"), 3, 10s));
  REQUIRE(cluster.terminate_backends("term") == 3);
  REQUIRE(wait_metric(series("pgwatchdog_reconnects_total", "term", "result", "success"), 3, 5s));
  CHECK(metric(series("pgwatchdog_disconnects_total", "term", "cause", "server_shutdown")) == 3);
  CHECK(wait_metric(up("term"), 1, 5s));
  CHECK(daemon->wait_for_output("down: server_shutdown (57P01)", 5s));  // the log has a thread
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: up drops to 0 within a second of the server stopping and comes back") {
  write_config("defaults:\n  backoff_max: 400ms\ntargets:\n" + target_yaml("db", 2));
  start_with_config();
  REQUIRE(wait_metric(up("db"), 1, 10s));
  // Both connections, so that both backends are known (up=1 needs only one).
  REQUIRE(wait_metric(series("pgwatchdog_connections", "db", "state", "healthy"), 2, 10s));
  // "Within a second" is pgwatchdog's: from the moment the last backend exited (its FATAL
  // 57P01 is on the socket by then; pg_ctl, the postmaster's signals and the backends' turn on
  // a CPU come before and are the server's and the scheduler's), less the time the daemon's
  // threads (its loop, its HTTP server) and this test process's (the 5 ms scrapes) waited for a
  // CPU meanwhile, measured (support/sched_stat.hpp). What is left is the daemon's loop reading
  // the FATAL and the scrape that sees up=0.
  const std::vector<int> cluster_pids_db = cluster.backend_pids("db");
  REQUIRE(cluster_pids_db.size() == 2);
  pgwd::testing::ProcessExits exits(cluster_pids_db);
  const pgwd::testing::ProcessCpuWaitSince daemon_wait(daemon->pid());
  const pgwd::testing::ProcessCpuWaitSince test_wait(::getpid());
  const auto stopping = std::chrono::steady_clock::now();
  cluster.stop(ShutdownMode::fast);
  REQUIRE(wait_metric(up("db"), 0, 5s));
  const auto seen = std::chrono::steady_clock::now();
  const auto waited = daemon_wait.waited() + test_wait.waited();
  REQUIRE(exits.wait(5s));
  std::chrono::steady_clock::time_point last_exit{};
  for (const int pid : cluster_pids_db) last_exit = std::max(last_exit, *exits.exited_at(pid));
  const auto down_after_exit = seen - last_exit;
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  MESSAGE("up=0 seen ", ms(seen - stopping), " ms after pg_ctl stop -m fast was called, ",
          ms(down_after_exit),
          " ms after the last backend exited; the daemon's and the test's threads waited ",
          ms(waited), " ms for a CPU: ", ms(down_after_exit - waited), " ms less those waits");
  CHECK(down_after_exit - waited < 1s);
  cluster.start();
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(wait_metric(up("db"), 1, 5s));
  MESSAGE("up=1 seen ",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                started)
              .count(),
          " ms after pg_ctl start returned");
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: SIGHUP adds and removes targets and leaves unchanged ones untouched") {
  write_config("targets:\n" + target_yaml("stays", 2) + target_yaml("goes", 1));
  start_with_config();
  REQUIRE(wait_metric(series("pgwatchdog_connections", "stays", "state", "healthy"), 2, 10s));
  REQUIRE(wait_metric(up("goes"), 1, 10s));
  const auto stays_pids = cluster.backend_pids("stays");
  REQUIRE(stays_pids.size() == 2);

  write_config("targets:\n" + target_yaml("stays", 2) + target_yaml("comes", 1));
  daemon->send_signal(SIGHUP);
  REQUIRE(
      daemon->wait_for_output("config reloaded: 1 added, 1 removed, 0 restarted, 1 unchanged", 5s));
  CHECK(wait_metric(up("comes"), 1, 10s));
  CHECK(waiter.run_until(at_most_every(50ms, [&] { return cluster.backend_pids("goes").empty(); }),
                         5s));
  CHECK_FALSE(metric(up("goes")).has_value());
  CHECK(cluster.backend_pids("stays") == stays_pids);  // same backends: not reconnected

  // A changed target is restarted: new backends.
  write_config("targets:\n" + target_yaml("stays", 3) + target_yaml("comes", 1));
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("0 added, 0 removed, 1 restarted, 1 unchanged", 5s));
  REQUIRE(wait_metric(series("pgwatchdog_connections", "stays", "state", "healthy"), 3, 10s));
  for (int pid : cluster.backend_pids("stays"))
    CHECK(std::find(stays_pids.begin(), stays_pids.end(), pid) == stays_pids.end());

  // A broken file keeps the running configuration.
  write_config("targets:\n  - name: x\n    dsn: \"host=127.0.0.1\"\n    probe_timeout: soon\n");
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("reload refused, still running the previous configuration", 5s));
  CHECK(daemon->output().find("probe_timeout: bad duration 'soon'") != std::string::npos);
  CHECK(metric(up("comes")) == 1);
  CHECK(cluster.backend_pids("comes").size() == 1);
  CHECK(daemon->running());
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: SIGTERM closes every connection and exits 0 within a second") {
  write_config("targets:\n" + target_yaml("a", 3) + target_yaml("b", 2));
  start_with_config();
  REQUIRE(wait_metric(up("a"), 1, 10s));
  REQUIRE(wait_metric(series("pgwatchdog_connections", "b", "state", "healthy"), 2, 10s));
  // The bound is pgwatchdog's own promise (docs/daemon.md: closing sends a Terminate and
  // waits for nothing, so the exit comes within milliseconds; 1 s is what a service manager may
  // count on). Wall time, so the time the daemon's main thread, which runs the whole shutdown,
  // waited for a CPU is taken out, read from /proc once it has exited and before it is reaped.
  const pgwd::testing::CpuWaitSince main_wait(daemon->pid(), daemon->pid());
  std::chrono::steady_clock::duration waited{};
  const auto signalled = std::chrono::steady_clock::now();
  daemon->send_signal(SIGTERM);
  const auto code = daemon->wait_exit(5s, [&] { waited = main_wait.waited(); });
  const auto took = std::chrono::steady_clock::now() - signalled;
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  MESSAGE("SIGTERM to exit: ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          " ms, of which its main thread waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), " ms for a CPU");
  CHECK(took - waited < 1s);
  CHECK(waiter.run_until(at_most_every(50ms,
                                       [&] {
                                         return cluster.backend_pids("a").empty() &&
                                                cluster.backend_pids("b").empty();
                                       }),
                         30s));  // a hang guard: the backends' exit is the server's time
  // The log is drained before the exit: its last line is there.
  CHECK(daemon->output().find("stopped in") != std::string::npos);

  // SIGINT (Ctrl-C) does the same.
  start_with_config();
  REQUIRE(wait_metric(up("a"), 1, 10s));
  daemon->send_signal(SIGINT);
  CHECK(daemon->wait_exit(5s) == 0);
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: runtime failures take down only their target and say why") {
  std::string yaml = "defaults:\n  backoff_max: 500ms\ntargets:\n" + target_yaml("good", 1);
  yaml += "  - name: badpw\n    dsn: \"" + cluster.conninfo_with_password("badpw", "wrong-pw-93") +
          "\"\n";
  yaml += "  - name: nodb\n    dsn: \"" + cluster.conninfo("nodb") + " dbname=no_such_db\"\n";
  yaml += "  - name: refused\n    dsn: \"host=127.0.0.1 port=" +
          std::to_string(pgwd::testing::free_tcp_port()) + " user=x password=y\"\n";
  yaml += "  - name: noname\n    dsn: \"host=no-such-host.invalid user=x\"\n";
  write_config(yaml);
  start_with_config();
  REQUIRE(wait_metric(up("good"), 1, 10s));
  CHECK(waiter.run_until(
      [&] {
        const std::string text = scrape();
        return sample(text, series("pgwatchdog_connect_failures_total", "badpw", "cause",
                                   "auth_failed")) >= 1 &&
               sample(text, series("pgwatchdog_connect_failures_total", "nodb", "cause",
                                   "database_missing")) >= 1 &&
               sample(text, series("pgwatchdog_connect_failures_total", "refused", "cause",
                                   "connect_failed")) >= 1 &&
               sample(text,
                      series("pgwatchdog_connect_failures_total", "noname", "cause", "dns")) >= 1;
      },
      15s));
  for (const char* bad : {"badpw", "nodb", "refused", "noname"}) CHECK(metric(up(bad)) == 0);
  CHECK(metric(up("good")) == 1);
  // A failure is counted before it is logged, and the log reaches stderr from a thread of its
  // own: the counter seen is no proof the line is out yet.
  CHECK(daemon->wait_for_output("badpw[0] connect attempt 1 failed: auth_failed (28P01)", 5s));
  CHECK(daemon->wait_for_output("nodb[0] connect attempt 1 failed: database_missing (3D000)", 5s));
  CHECK(daemon->wait_for_output("refused[0] connect attempt 1 failed: connect_failed", 5s));
  CHECK(daemon->wait_for_output("noname[0] connect attempt 1 failed: dns", 5s));
  CHECK(daemon->running());
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: passwords never show in logs or metrics or check-config or ps") {
  const std::string password = cluster.password();
  write_config("targets:\n" + target_yaml("secret", 2) + "  - name: wrongpw\n    dsn: \"" +
               cluster.conninfo_with_password("wrongpw", "Wr0ngPa55word") + "\"\n");
  start_with_config("trace");
  REQUIRE(wait_metric(series("pgwatchdog_connections", "secret", "state", "healthy"), 2, 10s));
  REQUIRE(cluster.terminate_backends("secret") == 2);
  REQUIRE(wait_metric(series("pgwatchdog_reconnects_total", "secret", "result", "success"), 2, 5s));
  REQUIRE(waiter.run_until(
      [&] { return daemon->output().find("auth_failed") != std::string::npos; }, 5s));
  const std::string text = scrape();
  const std::string log = daemon->output();
  CHECK(log.find("password='***'") != std::string::npos);  // the conninfo was logged, redacted
  CHECK(log.find(password) == std::string::npos);
  CHECK(log.find("Wr0ngPa55word") == std::string::npos);
  CHECK(text.find(password) == std::string::npos);
  CHECK(text.find("Wr0ngPa55word") == std::string::npos);
  CHECK(daemon->command_line().find(password) == std::string::npos);

  // --check-config prints the targets with the password redacted.
  const auto check = pgwd::testing::run_process(
      {PGWD_DAEMON_BINARY, "--config", config_path.string(), "--check-config"});
  CHECK(check.exit_code == 0);
  CHECK(check.output.find("name: \"secret\"") != std::string::npos);
  CHECK(check.output.find("password='***'") != std::string::npos);
  CHECK(check.output.find(password) == std::string::npos);
  CHECK(check.output.find("Wr0ngPa55word") == std::string::npos);

  // A DSN given on the command line is scrubbed from the process's arguments.
  daemon.reset();
  start(
      {"--target", "cli=" + cluster.conninfo("cli"), "--listen", listen(), "--log-level", "trace"});
  CHECK(daemon->command_line().find("--target cli=") != std::string::npos);
  CHECK(daemon->command_line().find(password) == std::string::npos);
  REQUIRE(wait_metric(up("cli"), 1, 10s));
  CHECK(daemon->output().find(password) == std::string::npos);
}

TEST_CASE_FIXTURE(DaemonFixture, "daemon: json logs are one valid object per line") {
  start({"--target", "j=" + cluster.conninfo("j") + " dbname='no \"such\" db'", "--listen",
         listen(), "--log-format", "json"});
  REQUIRE(
      daemon->wait_for_output("connect attempt 1 failed", 10s));  // the server quotes the db name
  std::istringstream lines(daemon->output());
  int checked = 0;
  for (std::string line; std::getline(lines, line); ++checked) {
    CHECK(line.rfind("{\"ts\":\"", 0) == 0);
    CHECK(line.back() == '}');
    const auto msg = line.find("\"msg\":\"");
    REQUIRE(msg != std::string::npos);
    // Inside the message every quote is escaped and no raw control character remains.
    for (std::size_t i = msg + 7; i + 2 < line.size(); ++i) {
      CHECK(static_cast<unsigned char>(line[i]) >= 0x20);
      if (line[i] == '\\')
        ++i;
      else
        CHECK(line[i] != '"');
    }
  }
  CHECK(checked >= 3);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
