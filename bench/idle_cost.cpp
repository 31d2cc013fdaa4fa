// Idle cost: N watched connections and nothing happening, for a fixed window. What the server
// counts (statements), what the process costs (CPU % of one core, RSS per connection, and the
// part beyond libpq's own PGconn: N bare PGconns measured in a forked child), and how often the
// loop thread wakes (its context switches: an idle loop thread only switches when epoll_wait
// returns; the watchdog's own callbacks are counted too).
// --via pgbouncer: the clients are PgBouncer's (10,000 do not fit as backends here). Statements
// are always the server's (its log, log_statement = all, by application_name, which PgBouncer
// passes on), proved able to count by one calibration statement first; through PgBouncer its own
// forwarded count (SHOW STATS total_query_count) is a figure of its own, since PgBouncer counts
// every round trip it forwards, the heartbeat's lone Sync too, though the server runs nothing.
// --targets T: the connections spread evenly over T targets (default: as few as a target's limit
// of 1,000 connections allows). Each target has its own heartbeat (default period), so the
// heartbeat's round trips grow with targets, not with connections: the figure
// heartbeat_round_trips_per_second says how many, counted by the watchdog's probe events.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/bench_args.hpp"
#include "support/connection_tracker.hpp"
#include "support/figures.hpp"
#include "support/loop_host.hpp"
#include "support/pgbouncer.hpp"
#include "support/process_stats.hpp"
#include "support/quiet_logger.hpp"
#include "support/raw_connection.hpp"
#include "support/targets.hpp"
#include "support/test_cluster.hpp"
#include "support/trusted_cluster.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;
using pgwd::testing::PgBouncer;
using pgwd::testing::PgBouncerSettings;
using testing::TestCluster;

namespace {

constexpr const char* kApplication = "bench_idle";

/// RSS growth per connection of `count` bare blocking PGconns, in a child process (so the
/// parent's heap is not grown by them). -1 on failure.
double bare_pgconn_bytes(const std::string& conninfo, int count) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    double per_connection = -1;
    try {
      std::vector<PgConn> connections;
      connections.reserve(static_cast<std::size_t>(count) + 1);
      connections.push_back(connect_blocking(conninfo));  // one-time libpq set-up not counted
      const std::int64_t before = rss_bytes();
      for (int i = 0; i < count; ++i) connections.push_back(connect_blocking(conninfo));
      per_connection = static_cast<double>(rss_bytes() - before) / count;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bare PGconns: %s\n", e.what());
    }
    [[maybe_unused]] const ssize_t n = ::write(pipe_fds[1], &per_connection, sizeof per_connection);
    ::_exit(0);  // the parent owns the cluster: no destructors here
  }
  ::close(pipe_fds[1]);
  double per_connection = -1;
  if (::read(pipe_fds[0], &per_connection, sizeof per_connection) != sizeof per_connection)
    per_connection = -1;
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return per_connection;
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("idle");
  const BenchArgs args(argc, argv, {"connections", "window", "via", "targets"});
  const int connections = args.integer("connections", 1000);
  const int window_s = args.integer("window", 60);
  const std::string via = args.text("via", "direct");
  const int targets = args.integer("targets", 0);
  // The figures of the default packing keep their names (idle.N.*); spread over T targets they
  // are idle.N.T_targets.*.
  const std::string prefix = "idle." + std::to_string(connections) + "." +
                             (targets > 0 ? std::to_string(targets) + "_targets." : "");
  try {
    if (via != "direct" && via != "pgbouncer")
      throw std::runtime_error("--via is direct or pgbouncer");
    if (targets < 0 || (targets > 0 && connections % targets != 0) ||
        (targets > 0 && connections / targets > kConnectionsPerTarget))
      throw std::runtime_error("--targets must divide --connections into targets of at most " +
                               std::to_string(kConnectionsPerTarget) + " connections");
    const std::int64_t limit = raise_open_files(2 * connections + 500);
    if (limit < connections + 100)
      throw std::runtime_error("open-files limit " + std::to_string(limit) + " too low");
    const auto cluster = start_trusted_cluster(via == "direct" ? 2 * connections + 50 : 100);
    std::unique_ptr<PgBouncer> bouncer;
    int port = cluster->port();
    if (via == "pgbouncer") {
      bouncer =
          std::make_unique<PgBouncer>(PgBouncerSettings{.server_port = cluster->port(),
                                                        .server_user = kTrustedRole,
                                                        .user = kTrustedRole,
                                                        .max_clients = connections * 2 + 100});
      port = bouncer->port();
    }
    const std::string conninfo = trusted_conninfo(port, kApplication);

    const double bare = bare_pgconn_bytes(conninfo + "_bare", connections);
    if (bare < 0) throw std::runtime_error("could not measure bare PGconns");

    ConnectionTracker tracker;
    WatchdogOptions options;
    options.observer = &tracker;
    options.logger = quiet_logger();
    const std::int64_t rss_before = rss_bytes();
    LoopHost host(options);
    host.call([&](Watchdog& w) {
      if (targets == 0) {
        add_connections(w, "idle", conninfo, connections);
        return;
      }
      for (int k = 0; k < targets; ++k) {
        TargetOptions target;
        target.name = "idle" + std::to_string(k);
        target.conninfo = conninfo;
        target.connections = connections / targets;
        w.add_target(target);
      }
    });
    if (!tracker.wait_healthy(connections, 300s))
      throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                               std::to_string(connections) + " connections came up");
    const std::int64_t rss_after = rss_bytes();
    note(std::to_string(connections) + " connections healthy (" + via + "); idle for " +
         std::to_string(window_s) + " s");

    // A statement through the same path first: if the log did not count it, a zero below would
    // mean nothing.
    const long long calibration_before = cluster->count_statements(kApplication);
    {
      const PgConn calibration = connect_blocking(conninfo);
      exec_value(calibration.get(), "SELECT 1");
    }
    // The log is written by the server's own process: wait for the line, with a deadline.
    const auto counted_by = Clock::now() + 10s;
    while (cluster->count_statements(kApplication) != calibration_before + 1) {
      if (Clock::now() > counted_by)
        throw std::runtime_error("the server log did not count the calibration statement");
      std::this_thread::sleep_for(20ms);
    }
    const long long statements_before = cluster->count_statements(kApplication);
    const long long forwarded_before = bouncer ? bouncer->total_queries() : 0;
    const std::uint64_t heartbeats_before = tracker.heartbeats();
    const std::int64_t switches_before = thread_context_switches(host.loop_tid());
    host.timing().reset();
    const std::int64_t cpu_before = process_cpu_ns();
    const Clock::time_point start = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(window_s));  // the idle window itself
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const std::int64_t cpu = process_cpu_ns() - cpu_before;
    const std::uint64_t callbacks = host.timing().callbacks();
    const std::int64_t switches = thread_context_switches(host.loop_tid()) - switches_before;
    const long long statements = cluster->count_statements(kApplication) - statements_before;
    const long long forwarded = bouncer ? bouncer->total_queries() - forwarded_before : 0;
    const std::uint64_t heartbeats = tracker.heartbeats() - heartbeats_before;

    const double hours = elapsed / 3600.0;
    emit_value(prefix + "statements_per_connection_hour",
               static_cast<double>(statements) / connections / hours, "1/h",
               "server log (log_statement=all), after a calibration statement it counted");
    if (bouncer)
      emit_value(prefix + "pgbouncer_forwarded_per_connection_hour",
                 static_cast<double>(forwarded) / connections / hours, "1/h",
                 "PgBouncer SHOW STATS total_query_count: every round trip it forwarded");
    emit_value(prefix + "cpu_percent_of_core", 100.0 * static_cast<double>(cpu) / 1e9 / elapsed,
               "%", "whole bench process, getrusage");
    emit_value(prefix + "loop_wakeups_per_second", static_cast<double>(switches) / elapsed, "1/s",
               "context switches of the loop thread (/proc/self/task/TID/status)");
    emit_value(prefix + "heartbeat_round_trips_per_second",
               static_cast<double>(heartbeats) / elapsed, "1/s",
               "the targets' heartbeats (default period), by the watchdog's probe events");
    emit_value(prefix + "watchdog_callbacks_per_second", static_cast<double>(callbacks) / elapsed,
               "1/s");
    const double watched = static_cast<double>(rss_after - rss_before) / connections;
    emit_value(prefix + "rss_per_connection", watched, "B");
    emit_value(prefix + "bare_pgconn_rss_per_connection", bare, "B",
               "N blocking PQconnectdb connections in a forked child");
    emit_value(prefix + "beyond_libpq_per_connection", watched - bare, "B",
               "RSS deltas: malloc's arenas differ between the two, so small values are noise");
    emit_value(prefix + "through_pgbouncer", bouncer ? 1 : 0, "bool");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "idle benchmark failed: %s\n", e.what());
    return 1;
  }
}
