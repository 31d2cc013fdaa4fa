// Reconnect storm: N watched connections, the server (or PgBouncer) restarts, all reconnect at
// once. Figures: time from the restart's return until every connection is healthy, and the
// watch loop's longest busy stretch in its own CPU time (CLOCK_THREAD_CPUTIME_ID around each of
// the watchdog's callbacks: time spent waiting for one of the 2 cores while the server
// restarted does not count), its CPU in all, and the library's own slow-callback count; and the
// most CPU the watch loop's thread spent between two ticks of a 5 ms timer (its longest busy
// stretch, an upper bound: a tick comes at the first gap between callbacks).
// Through PgBouncer, the same watchdog also watches 100 connections of an unrelated target,
// "bystander", straight to PostgreSQL: the detection latency of a terminate on one of them
// (admin sends pg_terminate_backend, to on_down), 30 times while all is quiet and then every
// 25 ms from the restart while the storm's connections reconnect (a fixed schedule, so that
// runs sample the same moments of the storm): bystander_terminate_quiet / _during_storm. Each
// terminate also ends a raw connection of the floor (a socket in epoll on a thread of its own,
// as in the detection benchmark) in the same statement, the two in turn first:
// bystander_floor_* is the floor's detection, bystander_gap_* the watcher's minus the floor's
// for the same terminate, which leaves out what the server and the two cores do to both.
//  --auth trust|scram   how the connections log in (SCRAM runs inside PQconnectPoll)
//  --connector-threads 0,2   WatchdogOptions::connector_threads, one storm each, side by side:
//      0 connects on the watch loop (figures storm.AUTH.N.*), k > 0 on k connector threads
//      (storm.AUTH.N.connector_threads_k.*)
//  --time-callbacks on|off   off: TimingLoop counts callbacks without timing them (its two
//      CPU-clock reads a callback are system calls: most of a loss wave's stretch on a VM);
//      figures storm.AUTH.N.untimed.*, without the per-callback CPU ones
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
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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
#include "support/stretch_ticker.hpp"
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

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

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

struct StormSetup {
  std::string conninfo;
  int connections = 0;
  TestCluster* cluster = nullptr;
  PgBouncer* bouncer = nullptr;
  std::string bystander_conninfo;  // empty: no bystander (the storm restarts its server too)
  std::string bystander_floor_conninfo;
};

constexpr int kBystanders = 100;
constexpr int kFloorConnections = 4;  // used in turn, each reconnected after its sample
constexpr auto kStormSamplePeriod = 25ms;

/// The storm's connections now healthy (targets storm0, storm1, ...: add_connections' names).
int storm_healthy(ConnectionTracker& tracker, int connections) {
  int healthy = 0;
  for (int k = 0; k * kConnectionsPerTarget < connections; ++k)
    for (const TrackedConnection& c : tracker.connections("storm" + std::to_string(k)))
      healthy += c.healthy ? 1 : 0;
  return healthy;
}

/// One bystander sample: detection of the same terminate by the watchdog and by the floor, µs
/// from just before the terminate was sent.
struct BystanderSample {
  double watcher_us = 0;
  double floor_us = 0;
};

/// The bystander's figures of one phase: prefix + "bystander_" + kind + "_" + phase.
std::string bystander_figure(const std::string& prefix, std::string_view kind,
                             std::string_view phase) {
  return prefix + "bystander_" + std::string(kind) + "_" + std::string(phase);
}
constexpr std::string_view kBystanderKinds[] = {"terminate", "floor", "gap"};
constexpr std::string_view kBystanderPhases[] = {"quiet", "during_storm"};

/// The paired samples of one phase.
struct BystanderSamples {
  std::vector<double> watcher_us, floor_us;
  void add(const BystanderSample& s) {
    watcher_us.push_back(s.watcher_us);
    floor_us.push_back(s.floor_us);
  }
  /// bystander_terminate_<phase> (noted `watcher_note`), bystander_floor_<phase> and
  /// bystander_gap_<phase>, the watcher's detection minus the floor's per terminate.
  void emit(const std::string& prefix, std::string_view phase,
            const std::string& watcher_note) const {
    std::vector<double> gap_us;
    for (std::size_t i = 0; i < watcher_us.size(); ++i)
      gap_us.push_back(watcher_us[i] - floor_us[i]);
    emit_samples(bystander_figure(prefix, "terminate", phase), watcher_us, "us", watcher_note);
    emit_samples(bystander_figure(prefix, "floor", phase), floor_us, "us",
                 "the floor's detection of the same terminates");
    emit_samples(bystander_figure(prefix, "gap", phase), gap_us, "us",
                 "the watcher's detection minus the floor's, per terminate");
  }
};

/// One terminate of a healthy connection of the target "bystander" (straight to PostgreSQL,
/// not through the PgBouncer that restarts) and of the floor's connection `floor_index`, in one
/// statement (`floor_first`: the floor's is signalled first), or nothing if no bystander
/// connection is healthy now.
std::optional<BystanderSample> bystander_sample(PGconn* admin, ConnectionTracker& tracker,
                                                FloorWatcher& floor, int floor_index,
                                                bool floor_first) {
  const std::vector<TrackedConnection> now = tracker.connections("bystander0");
  std::size_t index = now.size();
  for (std::size_t i = 0; i < now.size(); ++i)
    if (now[i].healthy && now[i].backend_pid != 0) index = i;
  if (index == now.size()) return std::nullopt;
  const int downs = now[index].downs;
  const std::string watched = std::to_string(now[index].backend_pid);
  const std::string raw = std::to_string(floor.backend_pid(floor_index));
  // unnest yields its elements in order, and each row's terminate runs as it is produced.
  const std::string pids = floor_first ? raw + "," + watched : watched + "," + raw;
  const Clock::time_point t0 = Clock::now();
  exec_value(admin, "SELECT count(pg_terminate_backend(p)) FROM unnest(ARRAY[" + pids + "]) p");
  if (!tracker.wait_until(
          "bystander0", [&](const auto& c) { return c[index].downs > downs; }, 10000ms))
    throw std::runtime_error("bystander: a terminated connection was not reported down");
  Clock::time_point floor_seen{};
  if (!floor.wait_detected(floor_index, 10s, floor_seen))
    throw std::runtime_error("bystander: the floor's terminated connection was not readable");
  floor.reconnect(floor_index);
  const auto micros = [&](Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(t - t0).count();
  };
  return BystanderSample{
      micros(tracker.connection("bystander0", static_cast<int>(index)).last_down),
      micros(floor_seen)};
}

/// One storm with `threads` connector threads; figures named `prefix`... `timed`: each callback's
/// CPU measured (TimingLoop::time_callbacks), which itself costs the loop two clock reads each.
void run_storm(const StormSetup& setup, std::size_t threads, const std::string& prefix,
               bool timed) {
  const int connections = setup.connections;
  ConnectionTracker tracker;
  WatchdogOptions options;
  options.observer = &tracker;
  options.logger = quiet_logger();
  options.connector_threads = threads;
  LoopHost host(options);
  std::unique_ptr<StretchTicker> ticker;
  host.call([&](Watchdog&) {
    host.timing().time_callbacks(timed);
    ticker = std::make_unique<StretchTicker>(host.timing());
  });
  const Clock::time_point added = Clock::now();
  host.call([&](Watchdog& w) { add_connections(w, "storm", setup.conninfo, connections); });
  const bool bystanders = !setup.bystander_conninfo.empty();
  if (bystanders)
    host.call([&](Watchdog& w) {
      add_connections(w, "bystander", setup.bystander_conninfo, kBystanders);
    });
  const int everyone = connections + (bystanders ? kBystanders : 0);
  if (!tracker.wait_healthy(everyone, 300s))
    throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                             std::to_string(connections) + " came up (" + tracker.summary() + ")");
  emit_value(prefix + "first_connect_s", seconds(Clock::now() - added), "s",
             "add_target until all healthy");
  std::shared_ptr<SeriesStore> metrics;
  host.call([&](Watchdog& w) { metrics = w.metrics(); });
  const auto slow_callbacks = [&] {
    return metric_sum(metrics->text(), "pgwatchdog_slow_callbacks_total");
  };
  const double slow_before = std::max(0.0, slow_callbacks());
  // Detection of an unrelated target's terminate, quiet: every connection healthy and idle.
  std::optional<PgConn> admin;
  std::unique_ptr<FloorWatcher> floor;
  BystanderSamples quiet, storm;
  int samples = 0;
  const auto sample = [&]() -> std::optional<BystanderSample> {
    const int n = samples++;
    return bystander_sample(admin->get(), tracker, *floor, n % kFloorConnections, n % 2 == 1);
  };
  if (bystanders) {
    admin.emplace(connect_blocking(admin_conninfo(*setup.cluster)));
    floor = std::make_unique<FloorWatcher>(setup.bystander_floor_conninfo, kFloorConnections);
    for (int i = 0; i < 30; ++i) {
      if (!tracker.wait_healthy(everyone, 60s))
        throw std::runtime_error("bystanders did not return");
      if (const auto s = sample()) quiet.add(*s);
    }
    if (!tracker.wait_healthy(everyone, 60s)) throw std::runtime_error("bystanders did not return");
  }

  host.timing().reset();
  host.call([&](Watchdog&) { ticker->reset(); });
  const Clock::time_point restart_start = Clock::now();
  if (setup.bouncer)
    setup.bouncer->restart();
  else
    setup.cluster->restart(ShutdownMode::immediate);
  const Clock::time_point restarted = Clock::now();
  // The same during the storm, every kStormSamplePeriod from the restart's return (a slot
  // missed while a sample took longer is skipped), until the storm's connections are all back.
  if (bystanders)
    for (auto slot = restarted;
         storm_healthy(tracker, connections) < connections && Clock::now() - restarted < 300s;) {
      while (slot < Clock::now()) slot += kStormSamplePeriod;
      std::this_thread::sleep_until(slot);  // the schedule, not a wait for an event
      const auto s = sample();
      if (!s) break;  // every bystander terminated once and queued behind the storm
      storm.add(*s);
    }
  if (!tracker.wait_healthy(everyone, 300s))
    throw std::runtime_error("only " + std::to_string(tracker.healthy_count()) + " of " +
                             std::to_string(connections) + " came back (" + tracker.summary() +
                             ")");
  const Clock::time_point all_healthy = Clock::now();
  const std::string how =
      setup.bouncer ? "PgBouncer SIGTERM + start" : "pg_ctl restart -m immediate";
  emit_value(prefix + "all_healthy_after_restart_s", seconds(all_healthy - restarted), "s",
             "from " + how + " returning");
  emit_value(prefix + "restart_took_s", seconds(restarted - restart_start), "s", how);
  // TimingLoop's per-callback CPU figures: none when callbacks are counted but not timed.
  const auto emit_cpu = [&](const std::string& figure, std::chrono::nanoseconds cpu,
                            const char* note) {
    if (timed)
      emit_value(prefix + figure, std::chrono::duration<double>(cpu).count(), "s", note);
    else
      emit_skipped(prefix + figure, "--time-callbacks off: callbacks counted, not timed");
  };
  emit_cpu("longest_callback_cpu_s", host.timing().longest_cpu(),
           "the loop thread's CPU time in its longest callback");
  Clock::time_point last_down{};
  for (int k = 0; k * kConnectionsPerTarget < connections; ++k)  // add_connections' names
    for (const TrackedConnection& c : tracker.connections("storm" + std::to_string(k)))
      last_down = std::max(last_down, c.last_down);
  StretchTicker::Stretch longest_stretch;
  StretchTicker::Stretch longest_stretch_reconnecting;
  host.call([&](Watchdog&) {
    longest_stretch = ticker->longest();
    longest_stretch_reconnecting = ticker->longest(last_down + StretchTicker::kPeriod);
  });
  emit_value(prefix + "longest_busy_stretch_cpu_s",
             std::chrono::duration<double>(longest_stretch.cpu).count(), "s",
             "the most CPU the loop thread spent between two ticks of a 5 ms timer");
  emit_cpu("longest_busy_stretch_in_callbacks_cpu_s", longest_stretch.in_callbacks,
           "of that stretch, the watchdog's callbacks (the rest: libevent and the kernel)");
  emit_value(prefix + "longest_busy_stretch_callbacks",
             static_cast<double>(longest_stretch.callbacks), "1",
             "the callbacks that stretch ran, those the pass budget declined included");
  emit_value(prefix + "longest_busy_stretch_reconnecting_cpu_s",
             std::chrono::duration<double>(longest_stretch_reconnecting.cpu).count(), "s",
             "the same, once every loss was seen (the reconnects alone)");
  emit_cpu("loop_cpu_s", host.timing().total_cpu(),
           "the loop thread's CPU in all the storm's callbacks");
  emit_value(prefix + "slow_callbacks", std::max(0.0, slow_callbacks()) - slow_before, "1",
             "pgwatchdog_slow_callbacks_total (10 ms threshold)");
  emit_value(prefix + "through_pgbouncer", setup.bouncer ? 1 : 0, "bool");
  if (bystanders) {
    quiet.emit(prefix, "quiet",
               "detection of a terminate on another target (straight to PostgreSQL), all idle");
    storm.emit(prefix, "during_storm",
               "the same every 25 ms while the storm's connections reconnect");
  } else {
    const char* why = "the storm restarts PostgreSQL itself: no target is unrelated";
    for (const std::string_view phase : kBystanderPhases)
      for (const std::string_view kind : kBystanderKinds)
        emit_skipped(bystander_figure(prefix, kind, phase), why);
  }
  host.call([&](Watchdog&) { ticker.reset(); });
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("storm");
  const BenchArgs args(argc, argv,
                       {"connections", "auth", "via", "connector-threads", "time-callbacks"});
  const int connections = args.integer("connections", 1000);
  const std::string auth = args.text("auth", "trust");
  const std::string via = args.text("via", "direct");
  const std::vector<int> thread_counts = args.integers("connector-threads", {0, 2});
  const std::string time_callbacks = args.text("time-callbacks", "on");
  // Untimed figures apart from the timed ones: their stretches are not the same measurement.
  const std::string prefix = "storm." + auth + "." + std::to_string(connections) + "." +
                             (time_callbacks == "off" ? "untimed." : "");
  try {
    if (auth != "trust" && auth != "scram") throw std::runtime_error("--auth is trust or scram");
    if (via != "direct" && via != "pgbouncer")
      throw std::runtime_error("--via is direct or pgbouncer");
    if (time_callbacks != "on" && time_callbacks != "off")
      throw std::runtime_error("--time-callbacks is on or off");
    for (const int threads : thread_counts)
      if (threads < 0 || threads > static_cast<int>(kMaxConnectorThreads))
        throw std::runtime_error("--connector-threads: each from 0 to 64");
    raise_open_files(2 * connections + 500);
    const auto cluster = start_trusted_cluster(
        via == "direct" ? connections + 50 : 100 + kBystanders + kFloorConnections + 50);
    const std::string verifier = scram_verifier(*cluster, "bench_scram");
    cluster->execute("CREATE ROLE bench_scram LOGIN PASSWORD '" + verifier + "'");
    const std::string user = auth == "trust" ? kTrustedRole : "bench_scram";

    std::unique_ptr<PgBouncer> bouncer;
    int port = cluster->port();
    if (via == "pgbouncer") {
      bouncer = std::make_unique<PgBouncer>(
          PgBouncerSettings{.server_port = cluster->port(),
                            .server_user = kTrustedRole,
                            .user = user,
                            .scram_verifier = auth == "scram" ? verifier : "",
                            .max_clients = connections * 2 + 100});
      port = bouncer->port();
    }
    std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                           " dbname=postgres application_name=bench_storm";
    if (auth == "scram") conninfo += std::string(" password=") + kPassword;

    const StormSetup setup{
        conninfo,
        connections,
        cluster.get(),
        bouncer.get(),
        bouncer ? trusted_conninfo(cluster->port(), "bench_bystander") : "",
        bouncer ? trusted_conninfo(cluster->port(), "bench_bystander_floor") : ""};
    for (const int threads : thread_counts) {
      const std::string figures =
          threads == 0 ? prefix : prefix + "connector_threads_" + std::to_string(threads) + ".";
      run_storm(setup, static_cast<std::size_t>(threads), figures, time_callbacks == "on");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "storm benchmark failed: %s\n", e.what());
    return 1;
  }
}
