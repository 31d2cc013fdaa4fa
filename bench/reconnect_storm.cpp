// Reconnect storm: N watched connections, the server (or PgBouncer) restarts, all reconnect at
// once. Figures: time from the restart's return until every connection is healthy, and the
// watch loop's longest busy stretch in its own CPU time (CLOCK_THREAD_CPUTIME_ID around each of
// the watchdog's callbacks: time spent waiting for one of the 2 cores while the server
// restarted does not count), its CPU in all, and the library's own slow-callback count; and the
// most CPU the watch loop's thread spent between two ticks of a 5 ms timer (its longest busy
// stretch, an upper bound: a tick comes at the first gap between callbacks).
//  --auth trust|scram   how the connections log in (SCRAM runs inside PQconnectPoll)
//  --connector-threads 0,2   WatchdogOptions::connector_threads, one storm each, side by side:
//      0 connects on the watch loop (figures storm.AUTH.N.*), k > 0 on k connector threads
//      (storm.AUTH.N.connector_threads_k.*)
//  --via direct|pgbouncer
//      direct: PostgreSQL backends, `pg_ctl restart -m immediate`;
//      pgbouncer: the clients are PgBouncer's (10,000 do not fit as backends here), and the
//      "restart" is PgBouncer's: SIGTERM (every client dropped at once), then started again.
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/bench_args.hpp"
#include "support/bench_daemon.hpp"
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
using testing::ShutdownMode;
using testing::TestCluster;

namespace {

constexpr const char* kPassword = "bench-storm-password";

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

/// The SCRAM verifier of kPassword for `role`, computed by libpq (so only the verifier reaches
/// the server's log and PgBouncer's userlist).
std::string scram_verifier(TestCluster& cluster, const std::string& role) {
  const PgConn admin = connect_blocking(admin_conninfo(cluster));
  char* verifier = PQencryptPasswordConn(admin.get(), kPassword, role.c_str(), "scram-sha-256");
  if (verifier == nullptr) throw std::runtime_error("PQencryptPasswordConn failed");
  std::string out = verifier;
  PQfreemem(verifier);
  return out;
}

/// The watch loop thread's CPU between consecutive ticks of a timer on it: a tick can only run
/// between two loop passes, so the most CPU between two ticks bounds the loop's longest busy
/// stretch from above (by one period of back-to-back work at most). Made, ticked, read and
/// destroyed on the loop thread (LoopHost::call).
class StretchTicker {
 public:
  static constexpr Nanos kPeriod = std::chrono::milliseconds(5);
  explicit StretchTicker(Loop& loop) : timer_(loop.make_timer([this] { tick(); })) {
    reset();
    timer_->arm(kPeriod);
  }
  void reset() {
    last_cpu_ns_ = thread_cpu_ns();
    ticks_.clear();
  }
  /// The most CPU between two ticks, counting only ticks after `since`.
  std::chrono::nanoseconds longest(Clock::time_point since = {}) const {
    std::int64_t longest = 0;
    for (const auto& [at, cpu_ns] : ticks_)
      if (at >= since) longest = std::max(longest, cpu_ns);
    return std::chrono::nanoseconds(longest);
  }

 private:
  void tick() {
    const std::int64_t now = thread_cpu_ns();
    ticks_.emplace_back(Clock::now(), now - last_cpu_ns_);
    last_cpu_ns_ = now;
    timer_->arm(kPeriod);
  }
  TimerPtr timer_;
  std::int64_t last_cpu_ns_ = 0;
  std::vector<std::pair<Clock::time_point, std::int64_t>> ticks_;
};

struct StormSetup {
  std::string conninfo;
  int connections = 0;
  TestCluster* cluster = nullptr;
  PgBouncer* bouncer = nullptr;
};

/// One storm with `threads` connector threads; figures named `prefix`...
void run_storm(const StormSetup& setup, std::size_t threads, const std::string& prefix) {
  const int connections = setup.connections;
  ConnectionTracker tracker;
  WatchdogOptions options;
  options.observer = &tracker;
  options.logger = quiet_logger();
  options.connector_threads = threads;
  LoopHost host(options);
  std::unique_ptr<StretchTicker> ticker;
  host.call([&](Watchdog&) { ticker = std::make_unique<StretchTicker>(host.timing()); });
  const Clock::time_point added = Clock::now();
  host.call([&](Watchdog& w) { add_connections(w, "storm", setup.conninfo, connections); });
  if (!tracker.wait_healthy(connections, 300s))
    throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                             std::to_string(connections) + " came up");
  emit_value(prefix + "first_connect_s", seconds(Clock::now() - added), "s",
             "add_target until all healthy");
  std::shared_ptr<SeriesStore> metrics;
  host.call([&](Watchdog& w) { metrics = w.metrics(); });
  const auto slow_callbacks = [&] {
    return metric_sum(metrics->text(), "pgwatchdog_slow_callbacks_total");
  };
  const double slow_before = std::max(0.0, slow_callbacks());

  host.timing().reset();
  host.call([&](Watchdog&) { ticker->reset(); });
  const Clock::time_point restart_start = Clock::now();
  if (setup.bouncer)
    setup.bouncer->restart();
  else
    setup.cluster->restart(ShutdownMode::immediate);
  const Clock::time_point restarted = Clock::now();
  if (!tracker.wait_healthy(connections, 300s))
    throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                             std::to_string(connections) + " came back");
  const Clock::time_point all_healthy = Clock::now();
  const std::string how =
      setup.bouncer ? "PgBouncer SIGTERM + start" : "pg_ctl restart -m immediate";
  emit_value(prefix + "all_healthy_after_restart_s", seconds(all_healthy - restarted), "s",
             "from " + how + " returning");
  emit_value(prefix + "restart_took_s", seconds(restarted - restart_start), "s", how);
  emit_value(prefix + "longest_callback_cpu_s",
             std::chrono::duration<double>(host.timing().longest_cpu()).count(), "s",
             "the loop thread's CPU time in its longest callback");
  Clock::time_point last_down{};
  for (const TrackedConnection& c : tracker.connections("storm"))
    last_down = std::max(last_down, c.last_down);
  std::chrono::nanoseconds longest_stretch{0};
  std::chrono::nanoseconds longest_stretch_reconnecting{0};
  host.call([&](Watchdog&) {
    longest_stretch = ticker->longest();
    longest_stretch_reconnecting = ticker->longest(last_down + StretchTicker::kPeriod);
  });
  emit_value(prefix + "longest_busy_stretch_cpu_s",
             std::chrono::duration<double>(longest_stretch).count(), "s",
             "the most CPU the loop thread spent between two ticks of a 5 ms timer");
  emit_value(prefix + "longest_busy_stretch_reconnecting_cpu_s",
             std::chrono::duration<double>(longest_stretch_reconnecting).count(), "s",
             "the same, once every loss was seen (the reconnects alone)");
  emit_value(prefix + "loop_cpu_s",
             std::chrono::duration<double>(host.timing().total_cpu()).count(), "s",
             "the loop thread's CPU in all the storm's callbacks");
  emit_value(prefix + "slow_callbacks", std::max(0.0, slow_callbacks()) - slow_before, "1",
             "pgwatchdog_slow_callbacks_total (10 ms threshold)");
  emit_value(prefix + "through_pgbouncer", setup.bouncer ? 1 : 0, "bool");
  host.call([&](Watchdog&) { ticker.reset(); });
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("storm");
  const BenchArgs args(argc, argv, {"connections", "auth", "via", "connector-threads"});
  const int connections = args.integer("connections", 1000);
  const std::string auth = args.text("auth", "trust");
  const std::string via = args.text("via", "direct");
  const std::vector<int> thread_counts = args.integers("connector-threads", {0, 2});
  const std::string prefix = "storm." + auth + "." + std::to_string(connections) + ".";
  try {
    if (auth != "trust" && auth != "scram") throw std::runtime_error("--auth is trust or scram");
    if (via != "direct" && via != "pgbouncer") throw std::runtime_error("--via is direct or pgbouncer");
    for (const int threads : thread_counts)
      if (threads < 0 || threads > static_cast<int>(kMaxConnectorThreads))
        throw std::runtime_error("--connector-threads: each from 0 to 64");
    raise_open_files(2 * connections + 500);
    const auto cluster = start_trusted_cluster(via == "direct" ? connections + 50 : 100);
    const std::string verifier = scram_verifier(*cluster, "bench_scram");
    cluster->execute("CREATE ROLE bench_scram LOGIN PASSWORD '" + verifier + "'");
    const std::string user = auth == "trust" ? kTrustedRole : "bench_scram";

    std::unique_ptr<PgBouncer> bouncer;
    int port = cluster->port();
    if (via == "pgbouncer") {
      bouncer = std::make_unique<PgBouncer>(PgBouncerSettings{
          .server_port = cluster->port(), .server_user = kTrustedRole, .user = user,
          .scram_verifier = auth == "scram" ? verifier : "", .max_clients = connections * 2 + 100});
      port = bouncer->port();
    }
    std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                           " dbname=postgres application_name=bench_storm";
    if (auth == "scram") conninfo += std::string(" password=") + kPassword;

    const StormSetup setup{conninfo, connections, cluster.get(), bouncer.get()};
    for (const int threads : thread_counts) {
      const std::string figures =
          threads == 0 ? prefix : prefix + "connector_threads_" + std::to_string(threads) + ".";
      run_storm(setup, static_cast<std::size_t>(threads), figures);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "storm benchmark failed: %s\n", e.what());
    return 1;
  }
}
