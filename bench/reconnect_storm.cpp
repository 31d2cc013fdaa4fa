// Reconnect storm: N watched connections, the server (or PgBouncer) restarts, all reconnect at
// once. Figures: time from the restart's return until every connection is healthy, and the
// watch loop's longest busy stretch in its own CPU time (CLOCK_THREAD_CPUTIME_ID around each of
// the watchdog's callbacks: time spent waiting for one of the 2 cores while the server
// restarted does not count), its CPU in all, and the library's own slow-callback count.
//  --auth trust|scram   how the connections log in (SCRAM runs inside PQconnectPoll, on the loop)
//  --via direct|pgbouncer
//      direct: PostgreSQL backends, `pg_ctl restart -m immediate`;
//      pgbouncer: the clients are PgBouncer's (10,000 do not fit as backends here), and the
//      "restart" is PgBouncer's: SIGTERM (every client dropped at once), then started again.
#include <libpq-fe.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("storm");
  const BenchArgs args(argc, argv, {"connections", "auth", "via"});
  const int connections = args.integer("connections", 1000);
  const std::string auth = args.text("auth", "trust");
  const std::string via = args.text("via", "direct");
  const std::string prefix = "storm." + auth + "." + std::to_string(connections) + ".";
  try {
    if (auth != "trust" && auth != "scram") throw std::runtime_error("--auth is trust or scram");
    if (via != "direct" && via != "pgbouncer") throw std::runtime_error("--via is direct or pgbouncer");
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

    ConnectionTracker tracker;
    WatchdogOptions options;
    options.observer = &tracker;
    options.logger = quiet_logger();
    LoopHost host(options);
    const Clock::time_point added = Clock::now();
    host.call([&](Watchdog& w) { add_connections(w, "storm", conninfo, connections); });
    if (!tracker.wait_healthy(connections, 300s))
      throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                               std::to_string(connections) + " came up");
    emit_value(prefix + "first_connect_s", seconds(Clock::now() - added), "s",
               "add_target until all healthy");
    std::shared_ptr<prometheus::Registry> registry;
    host.call([&](Watchdog& w) { registry = w.registry(); });
    const auto slow_callbacks = [&] {
      return metric_sum(prometheus::TextSerializer().Serialize(registry->Collect()),
                        "pgwatchdog_slow_callbacks_total");
    };
    const double slow_before = std::max(0.0, slow_callbacks());

    host.timing().reset();
    const Clock::time_point restart_start = Clock::now();
    if (bouncer)
      bouncer->restart();
    else
      cluster->restart(ShutdownMode::immediate);
    const Clock::time_point restarted = Clock::now();
    if (!tracker.wait_healthy(connections, 300s))
      throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                               std::to_string(connections) + " came back");
    const Clock::time_point all_healthy = Clock::now();
    const std::string how = bouncer ? "PgBouncer SIGTERM + start" : "pg_ctl restart -m immediate";
    emit_value(prefix + "all_healthy_after_restart_s", seconds(all_healthy - restarted), "s",
               "from " + how + " returning");
    emit_value(prefix + "restart_took_s", seconds(restarted - restart_start), "s", how);
    emit_value(prefix + "longest_callback_cpu_s",
               std::chrono::duration<double>(host.timing().longest_cpu()).count(), "s",
               "the loop thread's CPU time in its longest callback");
    emit_value(prefix + "loop_cpu_s", std::chrono::duration<double>(host.timing().total_cpu()).count(),
               "s", "the loop thread's CPU in all the storm's callbacks");
    emit_value(prefix + "slow_callbacks", std::max(0.0, slow_callbacks()) - slow_before, "1",
               "pgwatchdog_slow_callbacks_total (10 ms threshold)");
    emit_value(prefix + "through_pgbouncer", bouncer ? 1 : 0, "bool");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "storm benchmark failed: %s\n", e.what());
    return 1;
  }
}
