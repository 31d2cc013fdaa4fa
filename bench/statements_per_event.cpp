// Statements the watchdog makes the server run because of one event, counted by the server
// (log_statement = all, by application_name), with N connections watched on one target:
//  - terminate:            pg_terminate_backend of one backend;
//  - idle_session_timeout: one session ends by idle_session_timeout (set for its role just
//                          before it reconnects, so only that one session has it);
//  - restart:              pg_ctl restart -m fast (every connection ends).
// Each window runs from just before the event until every connection is healthy again and no
// probe is left in flight (all connections healthy means none is probing), plus a 1 s settle
// so that log lines of statements already sent are written.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "support/bench_args.hpp"
#include "support/connection_tracker.hpp"
#include "support/figures.hpp"
#include "support/loop_host.hpp"
#include "support/process_stats.hpp"
#include "support/quiet_logger.hpp"
#include "support/raw_connection.hpp"
#include "support/test_cluster.hpp"
#include "support/trusted_cluster.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;
using testing::ShutdownMode;
using testing::TestCluster;

namespace {

constexpr const char* kApplication = "bench_stmt";

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("statements");
  const BenchArgs args(argc, argv, {"connections", "repeat"});
  const int connections = args.integer("connections", 100);
  const int repeat = args.integer("repeat", 3);
  const std::string prefix = "statements." + std::to_string(connections) + ".";
  try {
    raise_open_files(2 * connections + 200);
    const auto cluster = start_trusted_cluster(connections + 50);
    {
      // Calibration: one statement sent under the application name must be counted as one, or
      // a count of zero below would mean nothing.
      const int before = cluster->count_statements(kApplication);
      const PgConn probe = connect_blocking(
          trusted_conninfo(cluster->port(), kApplication));
      exec_value(probe.get(), "SELECT 1");
      const auto deadline = Clock::now() + 10s;
      while (cluster->count_statements(kApplication) != before + 1) {
        if (Clock::now() > deadline)
          throw std::runtime_error("the server log does not count statements by application_name");
        std::this_thread::sleep_for(10ms);  // the log is a file: nothing to wait on
      }
    }
    ConnectionTracker tracker;
    WatchdogOptions options;
    options.observer = &tracker;
    options.logger = quiet_logger();
    LoopHost host(options);
    TargetOptions target;
    target.name = "stmt";
    target.conninfo = trusted_conninfo(cluster->port(), kApplication);
    target.connections = connections;
    target.backoff_initial = 50ms;
    target.backoff_max = 1s;
    host.call([&](Watchdog& w) { w.add_target(target); });

    // Statements and probes of one event: `cause` makes it happen.
    struct Counted {
      double statements = 0;
      double probes = 0;
    };
    const auto count_event = [&](const std::function<void()>& cause) {
      if (!tracker.wait_healthy(connections, 120s)) throw std::runtime_error("not all healthy");
      const int statements_before = cluster->count_statements(kApplication);
      const std::uint64_t probes_before = tracker.probes();
      const std::uint64_t downs_before = tracker.downs();
      cause();
      if (!tracker.wait_downs_above(downs_before, 120s)) throw std::runtime_error("the event was never seen");
      if (!tracker.wait_healthy(connections, 120s)) throw std::runtime_error("not all healthy again");
      std::this_thread::sleep_for(1s);  // settle: the server writes the log lines of what was sent
      return Counted{static_cast<double>(cluster->count_statements(kApplication) - statements_before),
                     static_cast<double>(tracker.probes() - probes_before)};
    };
    const auto terminate = [&](int index) {
      cluster->execute("SELECT pg_terminate_backend(" +
                      std::to_string(tracker.connection("stmt", index).backend_pid) + ")");
    };
    const auto report = [&](const std::string& event, const std::vector<Counted>& runs,
                            const std::string& text) {
      double statements = 0;
      double probes = 0;
      for (const Counted& c : runs) {
        statements += c.statements;
        probes += c.probes;
      }
      const auto n = static_cast<double>(runs.size());
      emit_value(prefix + event + ".statements", statements / n, "1", text);
      emit_value(prefix + event + ".probes", probes / n, "1", "probes the watchdog reported");
    };

    std::vector<Counted> runs;
    for (int i = 0; i < repeat; ++i) runs.push_back(count_event([&] { terminate(i % connections); }));
    report("terminate", runs, "per pg_terminate_backend of one backend, server log");

    runs.clear();
    for (int i = 0; i < repeat; ++i) {
      // Only the session that reconnects now gets the timeout: set it, replace one session, reset.
      const int index = (i + 1) % connections;
      if (!tracker.wait_healthy(connections, 120s)) throw std::runtime_error("not all healthy");
      cluster->execute("ALTER ROLE bench_trust SET idle_session_timeout = '2s'");
      const int old_pid = tracker.connection("stmt", index).backend_pid;
      terminate(index);
      if (!tracker.wait_until(
              "stmt", [&](const std::vector<TrackedConnection>& c) {
                const TrackedConnection& t = c[static_cast<std::size_t>(index)];
                return t.healthy && t.backend_pid != old_pid;
              },
              30s))
        throw std::runtime_error("the replaced session did not come back");
      cluster->execute("ALTER ROLE bench_trust RESET idle_session_timeout");
      // The window starts now and the timeout ends the session within 2 s.
      runs.push_back(count_event([] {}));
      if (tracker.connection("stmt", index).last_cause != Cause::idle_session_timeout)
        throw std::runtime_error("the session did not end by idle_session_timeout");
    }
    report("idle_session_timeout", runs, "per session ended by idle_session_timeout, server log");

    runs.clear();
    for (int i = 0; i < repeat; ++i) runs.push_back(count_event([&] { cluster->restart(ShutdownMode::fast); }));
    report("restart", runs, "per pg_ctl restart -m fast (all connections), server log");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "statements benchmark failed: %s\n", e.what());
    return 1;
  }
}
