// Server refusals at connect time, classified by SQLSTATE: 53300 (too many clients) and 57P03
// (cannot connect now: the server is shutting down). Each is retried with backoff, logged once as
// a warning naming cause and SQLSTATE, and counted in pgwatchdog_connect_failures_total{cause}.
// (28P01 and 3D000 are in wrong_password_test.cpp.)
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pg/handles.hpp"
#include "support/restart_checks.hpp"
#include "support/sched_stat.hpp"
#include "support/subprocess.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ClusterSettings;
using pgwd::testing::RecordingObserver;
using pgwd::testing::WatchdogFixture;

namespace {

namespace fs = std::filesystem;

std::string connection_error(const PgConnPtr& conn) {
  return conn ? PQerrorMessage(conn.get()) : "out of memory";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<RecordingObserver::Stamped<ConnectFailedEvent>> failures_of(
    const RecordingObserver& observer, const std::string& target) {
  std::vector<RecordingObserver::Stamped<ConnectFailedEvent>> out;
  for (const auto& f : observer.connect_failures)
    if (f.event.connection.target == target) out.push_back(f);
  return out;
}

/// Checks that every failed attempt of `target` was followed by that connection's next attempt no
/// earlier than the retry_in the failure announced (less 1 ms: the failure is recorded a few
/// microseconds after the retry timer was armed). Returns how many failures had a next attempt.
std::size_t check_spacing(const RecordingObserver& observer, const std::string& target) {
  std::size_t followed = 0;
  for (const auto& f : observer.connect_failures) {
    if (f.event.connection.target != target) continue;
    const auto next =
        std::find_if(observer.attempts.begin(), observer.attempts.end(), [&](const auto& a) {
          return a.event.connection.target == target &&
                 a.event.connection.index == f.event.connection.index &&
                 a.event.attempt == f.event.attempt + 1 && a.at >= f.at;
        });
    if (next == observer.attempts.end()) continue;  // the test stopped looking before it
    ++followed;
    CHECK(next->at - f.at >= f.event.retry_in - 1ms);
  }
  return followed;
}

std::size_t count_lines_with(const std::string& text, const std::vector<std::string>& parts) {
  std::istringstream lines(text);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line);)
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const std::string& part) { return contains(line, part); }))
      ++count;
  return count;
}

std::string pg_ctl_path() {
  // The same lookup as the harness: pg_config's bindir if it holds pg_ctl, else Debian's.
  const testing::ProcessResult result = testing::run_process({"pg_config", "--bindir"});
  if (result.exit_code == 0) {
    std::string dir = result.output;
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
    std::error_code ec;
    if (!dir.empty() && fs::exists(fs::path(dir) / "pg_ctl", ec)) return dir + "/pg_ctl";
  }
  return "/usr/lib/postgresql/15/bin/pg_ctl";
}

/// Asks for a smart shutdown and returns at once (pg_ctl -W): the postmaster then refuses new
/// sessions with 57P03 and waits for the open ones to end. TestCluster only offers waiting
/// stops; its data directory is <dir of the server log>/data (see test_cluster.cpp).
void request_smart_shutdown(const testing::TestCluster& cluster) {
  const std::string base_dir = fs::path(cluster.log_path()).parent_path().string();
  std::vector<std::string> command;
  if (::geteuid() == 0)
    command = {::access("/usr/sbin/runuser", X_OK) == 0 ? "/usr/sbin/runuser" : "runuser", "-u",
               "postgres", "--"};
  for (const std::string& arg :
       {pg_ctl_path(), std::string("-D"), base_dir + "/data", std::string("-m"),
        std::string("smart"), std::string("-W"), std::string("stop")})
    command.push_back(arg);
  testing::run_checked(command, base_dir);
}

bool server_running(const testing::TestCluster& cluster) {
  std::error_code ec;
  return fs::exists(fs::path(cluster.log_path()).parent_path() / "data" / "postmaster.pid", ec);
}

struct TooManyClientsFixture : WatchdogFixture {
  // 6 slots, 3 of them for superusers: 3 sessions for the role watchdog. The harness's admin
  // helpers connect as superuser and still get in.
  TooManyClientsFixture()
      : WatchdogFixture(ClusterSettings{
            .extra_config = {"max_connections = 6", "superuser_reserved_connections = 3"}}) {}
};

}  // namespace

TEST_CASE_FIXTURE(TooManyClientsFixture,
                  "refusals: too many clients - 53300 retried with backoff until a slot frees up") {
  // One of the three slots is held by a plain session of ours; the target wants all three.
  PgConnPtr holder(PQconnectdb(cluster.conninfo("holder").c_str()));
  REQUIRE_MESSAGE(PQstatus(holder.get()) == CONNECTION_OK, connection_error(holder));

  constexpr std::size_t n = 3;
  TargetOptions o = target("crowd", static_cast<int>(n));
  o.backoff_initial = 100ms;
  o.backoff_max = 400ms;
  o.scout_interval = 0ms;  // the backoff alone: the scout tries sooner than announced on purpose
  o.heartbeat = 0ms;  // the healthy counts below are exact: a heartbeat in flight reads "probing"
  watchdog->add_target(o);

  // The three attempts race for two slots (a refused backend holds its slot until it exits, so
  // at first more than one may be refused); two of them get in.
  REQUIRE(loop.run_until(
      [&] {
        return count_in("crowd", ConnectionState::healthy) == n - 1 &&
               !failures_of(observer, "crowd").empty();
      },
      10s));
  const std::size_t failures_before = failures_of(observer, "crowd").size();

  // Counted, not timed: each refused attempt forks a backend and runs SCRAM (the reserved-slot
  // check comes after authentication), which a loaded machine slows down; how often pgwatchdog
  // tries is checked below on the delays it announces.
  const auto window_start = std::chrono::steady_clock::now();
  REQUIRE(loop.run_until(
      [&] { return failures_of(observer, "crowd").size() - failures_before >= 4; }, 30s));
  const auto window = std::chrono::steady_clock::now() - window_start;
  // The ones that fit stay healthy; the odd one out keeps being refused.
  CHECK(count_in("crowd", ConnectionState::healthy) == n - 1);
  CHECK(metric("pgwatchdog_up", {{"target", "crowd"}}) == 1);
  CHECK(metric("pgwatchdog_connections", {{"target", "crowd"}, {"state", "healthy"}}) == n - 1);

  const auto failures = failures_of(observer, "crowd");
  // Every attempt refused, each announcing its next at most backoff_max = 400 ms away.
  for (const auto& f : failures) {
    CHECK(f.event.cause == Cause::too_many_clients);
    CHECK(f.event.sqlstate == "53300");
    // PostgreSQL 15 says "remaining connection slots are reserved for non-replication superuser
    // connections" when only reserved slots are left, "sorry, too many clients already" when none
    // is.
    CHECK_MESSAGE((contains(f.event.message, "remaining connection slots are reserved") ||
                   contains(f.event.message, "too many clients already")),
                  f.event.message);
    CHECK(f.event.retry_in >= 50ms);
    CHECK(f.event.retry_in <= 400ms);
  }
  CHECK(check_spacing(observer, "crowd") + n >= failures.size());
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "crowd"}, {"cause", "too_many_clients"}}) ==
        static_cast<double>(failures.size()));

  // A clear log line: cause and SQLSTATE, the server's words, when the next attempt is. Only the
  // first refusal of each connection is a warning; repeats are debug.
  const std::string log = log_text->str();
  CHECK(contains(log, "connect attempt 1 failed: too_many_clients (53300): "));
  CHECK(contains(log, "; next attempt in "));
  const std::size_t warnings = count_lines_with(log, {"[warning]", "too_many_clients (53300)"});
  const std::size_t debugs = count_lines_with(log, {"[debug]", "too_many_clients (53300)"});
  CHECK(warnings >= 1);
  CHECK(warnings <= n);
  CHECK(warnings + debugs == failures.size());
  MESSAGE("53300: ", failures.size(), " refusals (", failures.size() - failures_before, " in ",
          std::chrono::duration_cast<std::chrono::milliseconds>(window).count(),
          " ms), first message: ", failures.front().event.message);

  // A slot frees up: the waiting connection gets in on a later attempt.
  const auto freed_at = std::chrono::steady_clock::now();
  const pgwd::testing::CpuWaitSince loop_wait;
  holder.reset();
  REQUIRE(loop.run_until([&] { return all_healthy("crowd", n); }, 5s));
  const auto& last = observer.healthy.back();
  CHECK(last.event.attempt > 1);
  MESSAGE("slot freed: connection ", last.event.connection.index, " healthy on attempt ",
          last.event.attempt, ", ",
          std::chrono::duration_cast<std::chrono::milliseconds>(last.at - freed_at).count(),
          " ms after the holder closed");
  // The next attempt is at most backoff_max away; the loop's thread and the new backend waiting
  // for a CPU are the machine's share of the way.
  const auto waited =
      loop_wait.waited() + pgwd::testing::lifetime_cpu_wait(last.event.server.backend_pid);
  MESSAGE("the loop and the new backend waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
          " ms for a CPU meanwhile");
  CHECK(last.at - freed_at < 1s + waited);
  CHECK(metric("pgwatchdog_connections", {{"target", "crowd"}, {"state", "healthy"}}) == n);
  const auto retried = std::count_if(observer.healthy.begin(), observer.healthy.end(),
                                     [](const auto& h) { return h.event.attempt > 1; });
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "crowd"}, {"result", "success"}}) ==
        static_cast<double>(retried));
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "refusals: cannot connect now - 57P03 while the server shuts down then healthy "
                  "after a start") {
  // An open session keeps a smart shutdown from completing: the server is then shutting down
  // and refuses every new session with 57P03.
  PgConnPtr holder(PQconnectdb(cluster.conninfo("holder").c_str()));
  REQUIRE_MESSAGE(PQstatus(holder.get()) == CONNECTION_OK, connection_error(holder));
  request_smart_shutdown(cluster);
  // pg_ctl -W returns once the signal is sent: wait for the postmaster to act on it.
  std::string refusal;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    const PgConnPtr probe(PQconnectdb(cluster.conninfo("probe").c_str()));
    if (PQstatus(probe.get()) != CONNECTION_OK) {
      refusal = connection_error(probe);
      break;
    }
  }
  REQUIRE_MESSAGE(contains(refusal, "the database system is shutting down"), refusal);

  constexpr std::size_t n = 2;
  TargetOptions o = target("shutdown", static_cast<int>(n));
  o.backoff_initial = 100ms;
  o.backoff_max = 400ms;
  o.scout_interval = 0ms;  // the backoff alone: the scout tries sooner than announced on purpose
  watchdog->add_target(o);
  // Counted, not timed (each refusal forks a backend): 5 attempts each, every one refused, each
  // announcing its next at most backoff_max = 400 ms away.
  const auto window_start = std::chrono::steady_clock::now();
  REQUIRE(loop.run_until([&] { return failures_of(observer, "shutdown").size() >= 5 * n; }, 30s));
  const auto window = std::chrono::steady_clock::now() - window_start;

  const auto failures = failures_of(observer, "shutdown");
  for (const auto& f : failures) {
    CHECK(f.event.cause == Cause::cannot_connect_now);
    CHECK(f.event.sqlstate == "57P03");
    CHECK(contains(f.event.message, "the database system is shutting down"));
    CHECK(f.event.retry_in >= 50ms);
    CHECK(f.event.retry_in <= 400ms);
  }
  CHECK(check_spacing(observer, "shutdown") + n >= failures.size());
  CHECK(observer.healthy.empty());
  CHECK(metric("pgwatchdog_up", {{"target", "shutdown"}}) == 0);
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "shutdown"}, {"cause", "cannot_connect_now"}}) ==
        static_cast<double>(failures.size()));
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "shutdown"}, {"result", "failure"}}) ==
        static_cast<double>(failures.size() - n));  // each connection's first is not a reconnect
  const std::string log = log_text->str();
  CHECK(contains(log, "connect attempt 1 failed: cannot_connect_now (57P03): "));
  CHECK(contains(log, "the database system is shutting down"));
  CHECK(count_lines_with(log, {"[warning]", "cannot_connect_now (57P03)"}) == n);
  MESSAGE("57P03: ", failures.size(), " refusals in ",
          std::chrono::duration_cast<std::chrono::milliseconds>(window).count(),
          " ms for 2 connections, first message: ", failures.front().event.message);

  // The last session ends: the shutdown completes (an attempt meanwhile would be refused, with
  // 57P03 or "Connection refused"), then the server starts again and the target comes back.
  holder.reset();
  REQUIRE(loop.run_until([&] { return !server_running(cluster); }, 30s));
  const pgwd::testing::CpuWaitSince loop_wait;
  cluster.start();  // blocks the loop for a moment; the watchdog's timers just fire late
  const auto started_at = std::chrono::steady_clock::now();
  REQUIRE(loop.run_until([&] { return all_healthy("shutdown", n); }, 30s));
  // Back within a second of the start, less the machine's share, and each returning attempt no
  // later than backoff_max after it. No connection was healthy before: every healthy event is a
  // return (hence 0 before them).
  pgwd::testing::check_back_after_ready("57P03", observer, "shutdown", 0, started_at, o.backoff_max,
                                        loop_wait.waited(), cluster.postmaster_pid());
  CHECK(metric("pgwatchdog_up", {{"target", "shutdown"}}) == 1);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "shutdown"}, {"result", "success"}}) ==
        n);
  std::map<std::string, int> causes;
  for (const auto& f : failures_of(observer, "shutdown"))
    ++causes[std::string(to_string(f.event.cause))];
  for (const auto& [cause, count] : causes) MESSAGE("  failures with cause ", cause, ": ", count);
  check_spacing(observer, "shutdown");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
