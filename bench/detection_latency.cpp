// Detection latency: from the fault (the instant just before the terminate is sent, or pg_ctl
// stop is started) to the moment each watcher knows. Measured side by side on one server:
//  - floor:    a raw libpq connection's socket in epoll, on a thread doing nothing else;
//  - embedded: pgwatchdog on a host's libevent loop (Watchdog(Loop&), on a host thread);
//  - thread:   pgwatchdog's WatchdogThread;
//  - daemon:   the daemon, as a scraper sees it (the first /metrics that shows the disconnect);
//  - poll_1s:  a real poller sending SELECT 1 every second (terminate only);
//  - poll_*_model: polling computed as a uniform phase over the period plus the floor's sample.
// Terminate samples are interleaved (floor, embedded, thread, floor, ...) so drift in the
// machine's load hits every watcher alike, and each starts with every watcher's connections
// healthy: a watchdog's reconnect after the previous sample (a backend forked, SCRAM on its loop
// thread) no longer lands on the next watcher's sample (--settle 0 measures the old order).
// terminate.embedded_path is the library's own part of the embedded figure: from the start of
// the loop callback that reported the down (TimingLoop) to on_down. For the stops,
// stop_*.embedded_woken is when that callback began, from the fault (so the gap to the floor
// splits into before the loop ran and inside it), and stop_*.<watcher>.downs_with_57P01 /
// downs_on_eof count whether the server's word came before the end. Each stop also stamps
// every watcher's backends' exits (a pidfd each, tests/support/process_exits.hpp, its thread at
// SCHED_FIFO so that it stamps each exit as it happens, ahead of the backends still exiting):
// stop_*.<watcher>_backend_exit is when the watcher's own backends ended, from the fault (the
// server's and the scheduler's order, nothing a watcher does), and stop_*.<watcher>_after_exit
// how long after its own backend's exit the watcher knew (what the watcher adds; negative where
// it read the 57P01 WARNING before the backend finished exiting). Before each stop every
// watcher's connections are reopened interleaved (--fair-order 0: as the restart left them).
// Per stop, paired with the floor of the same stop: stop_*.<watcher>_round_gap, the watcher's
// median detection minus the floor's, and stop_*.<watcher>_first_after_first_exit (the floor's
// too), the first detection after the first backend's exit; the pooled percentiles over a few
// stops mostly say which stops a watcher was lucky in.
//
// --bystanders N: each watchdog also watches N idle connections through a PgBouncer (10,000 do
// not fit as backends here), one watchdog after the other (two of 10,000 exceed the 20,000 file
// descriptors a process may have here), the floor interleaved with both; only the terminate
// samples run, named terminate_<total>.*, and the terminated connections are still the
// `connections` direct ones.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pgwd/watchdog_thread.hpp"
#include "support/bench_args.hpp"
#include "support/bench_daemon.hpp"
#include "support/connection_tracker.hpp"
#include "support/figures.hpp"
#include "support/loop_host.hpp"
#include "support/pgbouncer.hpp"
#include "support/process_exits.hpp"
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

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

TargetOptions watched_target(const TestCluster& cluster, const std::string& name, int connections) {
  TargetOptions target;
  target.name = name;
  target.conninfo = cluster.conninfo("bench_det_" + name);
  target.connections = connections;
  target.backoff_initial = 20ms;
  target.backoff_max = 500ms;
  return target;
}

/// One watched variant (embedded or thread): its tracker and the connections it keeps.
struct Watched {
  std::string name;
  ConnectionTracker* tracker;
  int connections;    ///< of target `name`, the ones terminated
  int healthy_total;  ///< with the bystanders
};

void terminate(PGconn* admin, int pid) {
  exec_value(admin, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
}

/// One terminate of connection `index` of a watched variant: its latency in µs, and (where the
/// tracker has a callback clock) when the loop callback that reported it began.
struct WatchedSample {
  double latency_us;
  std::optional<double> woken_us;
};

WatchedSample terminate_watched(PGconn* admin, Watched& w, int index) {
  if (!w.tracker->wait_healthy(w.healthy_total, 20s))
    throw std::runtime_error(w.name + ": not all connections healthy before a sample");
  const TrackedConnection before = w.tracker->connection(w.name, index);
  const Clock::time_point t0 = Clock::now();
  terminate(admin, before.backend_pid);
  if (!w.tracker->wait_until(
          w.name,
          [&](const std::vector<TrackedConnection>& c) {
            return c[static_cast<std::size_t>(index)].downs > before.downs;
          },
          10s))
    throw std::runtime_error(w.name + ": a terminated connection was not reported down");
  const TrackedConnection after = w.tracker->connection(w.name, index);
  WatchedSample sample{micros(after.last_down - t0), std::nullopt};
  if (after.last_down_woken != Clock::time_point{})
    sample.woken_us = micros(after.last_down_woken - t0);
  return sample;
}

double terminate_floor(PGconn* admin, FloorWatcher& floor, int index) {
  const int pid = floor.backend_pid(index);
  const Clock::time_point t0 = Clock::now();
  terminate(admin, pid);
  Clock::time_point when{};
  if (!floor.wait_detected(index, 10s, when))
    throw std::runtime_error("floor: a terminated connection was not reported readable");
  floor.reconnect(index);
  return micros(when - t0);
}

/// The daemon: time until a scrape shows one more disconnect of target "daemon".
class DaemonWatch {
 public:
  DaemonWatch(const std::string& binary, const TestCluster& cluster)
      : daemon_(binary,
                "defaults:\n  backoff_initial: 20ms\n  backoff_max: 500ms\ntargets:\n"
                "  - name: daemon\n    dsn: \"" +
                    cluster.conninfo("bench_det_daemon") + "\"\n") {}

  double disconnects() const {
    return metric_sum(daemon_.scrape(), "pgwatchdog_disconnects_total", "target=\"daemon\"");
  }
  bool up() const {
    return metric_sum(daemon_.scrape(), "pgwatchdog_up", "target=\"daemon\"") == 1;
  }
  /// Scrapes back to back until the count passes `before`; the end of that scrape, or nullopt.
  std::optional<Clock::time_point> scrape_until_more_than(double before,
                                                          Clock::duration timeout) const {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const double now_count = disconnects();
      if (now_count > before) return Clock::now();
    }
    return std::nullopt;
  }
  void wait_up(Clock::duration timeout) const {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!up()) {
      if (Clock::now() > deadline) throw std::runtime_error("daemon: target not up again in time");
      std::this_thread::sleep_for(2ms);  // nothing to wait on across processes but the scrape
    }
  }

 private:
  BenchDaemon daemon_;
};

/// A real poller: SELECT 1 every `period` on its own connection; the instant a poll failed.
class Poller {
 public:
  Poller(const std::string& conninfo, Clock::duration period)
      : conn_(connect_blocking(conninfo)), pid_(PQbackendPID(conn_.get())) {
    thread_ = std::thread([this, period] {
      Clock::time_point next = Clock::now() + period;
      for (;;) {
        std::this_thread::sleep_until(next);  // the poller's own period, the thing measured
        next += period;
        PGresult* result = PQexec(conn_.get(), "SELECT 1");
        const bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
        PQclear(result);
        if (!ok) {
          failed_at_ = Clock::now();
          return;
        }
      }
    });
  }
  ~Poller() { thread_.join(); }
  int pid() const { return pid_; }
  /// Joins the poller (it ends at its first failed poll) and returns when that was.
  Clock::time_point wait_failure() {
    thread_.join();
    thread_ = std::thread([] {});
    return failed_at_;
  }

 private:
  PgConn conn_;
  int pid_;
  Clock::time_point failed_at_{};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("detection");
  const BenchArgs args(argc, argv,
                       {"samples", "connections", "stops", "poll-samples", "daemon",
                        "daemon-samples", "settle", "bystanders", "fair-order"});
  const int samples = args.integer("samples", 100);
  const int connections = args.integer("connections", 100);
  const int stops = args.integer("stops", 3);
  const int poll_samples = args.integer("poll-samples", 10);
  const int daemon_samples = args.integer("daemon-samples", 30);
  const std::string daemon_binary = args.text("daemon", "");
  const bool settle = args.integer("settle", 1) != 0;
  const bool fair_order = args.integer("fair-order", 1) != 0;
  const int bystanders = args.integer("bystanders", 0);
  const std::string terminate_event =
      bystanders > 0 ? "terminate_" + std::to_string(connections + bystanders) : "terminate";
  try {
    const std::int64_t files = raise_open_files(4 * connections + bystanders + 200);
    if (files < 3 * connections + bystanders + 100)
      throw std::runtime_error("open-files limit " + std::to_string(files) + " too low");
    const auto cluster_owner = start_trusted_cluster(3 * connections + 50);
    TestCluster& cluster = *cluster_owner;
    const PgConn admin = connect_blocking(admin_conninfo(cluster));
    exec_value(admin.get(), "SET log_statement = 'none'");
    std::unique_ptr<PgBouncer> bouncer;
    if (bystanders > 0)
      bouncer = std::make_unique<PgBouncer>(PgBouncerSettings{.server_port = cluster.port(),
                                                              .server_user = kTrustedRole,
                                                              .user = kTrustedRole,
                                                              .max_clients = bystanders + 100});
    const auto bystander_conninfo = [&] {
      return trusted_conninfo(bouncer->port(), "bench_det_idle");
    };
    FloorWatcher floor(cluster.conninfo("bench_det_floor"), connections);

    ConnectionTracker embedded_tracker;
    ConnectionTracker thread_tracker;
    std::unique_ptr<LoopHost> embedded;
    std::unique_ptr<WatchdogThread> on_thread;
    std::vector<Watched> watched;
    const auto start_embedded = [&] {
      WatchdogOptions options;
      options.observer = &embedded_tracker;
      options.logger = quiet_logger();
      embedded = std::make_unique<LoopHost>(options);
      TimingLoop& timing = embedded->timing();
      embedded_tracker.set_callback_clock([&timing] { return timing.callback_began(); });
      embedded->call([&](Watchdog& w) {
        w.add_target(watched_target(cluster, "embedded", connections));
        if (bouncer) add_connections(w, "embedded_idle", bystander_conninfo(), bystanders);
      });
      watched.push_back({"embedded", &embedded_tracker, connections, connections + bystanders});
    };
    const auto start_thread = [&] {
      WatchdogOptions options;
      options.observer = &thread_tracker;
      options.logger = quiet_logger();
      on_thread = std::make_unique<WatchdogThread>(options);
      on_thread->add_target(watched_target(cluster, "thread", connections));
      if (bouncer) add_connections(*on_thread, "thread_idle", bystander_conninfo(), bystanders);
      watched.push_back({"thread", &thread_tracker, connections, connections + bystanders});
    };
    const auto all_healthy = [&](Clock::duration timeout) {
      for (Watched& w : watched)
        if (!w.tracker->wait_healthy(
                w.healthy_total, std::chrono::duration_cast<std::chrono::milliseconds>(timeout)))
          throw std::runtime_error(w.name + ": not all connections healthy (" +
                                   std::to_string(w.tracker->healthy_count()) + " of " +
                                   std::to_string(w.healthy_total) + ")");
    };

    // --- single terminate, interleaved --------------------------------------------------------
    std::map<std::string, std::vector<double>> terminate_us;
    const auto sample_terminates = [&] {
      note("watching " + std::to_string(connections + bystanders) + " connections per watchdog (" +
           std::to_string(bystanders) + " of them idle through PgBouncer); " +
           std::to_string(samples) + " terminate samples each");
      for (int i = 0; i < samples; ++i) {
        const int index = i % connections;
        if (settle) all_healthy(20s);
        terminate_us["floor"].push_back(terminate_floor(admin.get(), floor, index));
        for (Watched& w : watched) {
          if (settle) all_healthy(20s);
          const WatchedSample sample = terminate_watched(admin.get(), w, index);
          terminate_us[w.name].push_back(sample.latency_us);
          if (sample.woken_us)
            terminate_us[w.name + "_path"].push_back(sample.latency_us - *sample.woken_us);
        }
      }
    };
    if (bystanders > 0) {
      // Two watchdogs of 10,000 connections do not fit in one process's descriptors here
      // (20,000): each has its turn, the floor interleaved with both.
      for (const auto& start :
           {std::function<void()>(start_embedded), std::function<void()>(start_thread)}) {
        start();
        all_healthy(300s);
        sample_terminates();
        embedded.reset();
        on_thread.reset();
        watched.clear();
      }
      for (const auto& [name, values] : terminate_us)
        emit_samples(terminate_event + "." + name, values, "us",
                     name == "floor" ? "the floor watches the terminated connections only" : "");
      return 0;
    }
    start_embedded();
    start_thread();
    all_healthy(60s);
    sample_terminates();

    std::unique_ptr<DaemonWatch> daemon;
    if (daemon_binary.empty()) {
      emit_skipped("terminate.daemon", "no --daemon binary given");
    } else {
      daemon = std::make_unique<DaemonWatch>(daemon_binary, cluster);
      daemon->wait_up(30s);
      for (int i = 0; i < daemon_samples; ++i) {
        const double before = daemon->disconnects();
        const std::string pid = exec_value(
            admin.get(),
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_det_daemon'");
        if (pid.empty())
          throw std::runtime_error("daemon: its connection is not in pg_stat_activity");
        const Clock::time_point t0 = Clock::now();
        terminate(admin.get(), std::stoi(pid));
        const auto seen = daemon->scrape_until_more_than(before, 10s);
        if (!seen) throw std::runtime_error("daemon: the disconnect never showed in /metrics");
        terminate_us["daemon"].push_back(micros(*seen - t0));
        daemon->wait_up(10s);
      }
    }

    // A real 1 s poller: the terminate lands at a random phase of its period.
    std::mt19937_64 random(12345);
    std::uniform_real_distribution<double> phase(0.0, 1.0);
    for (int i = 0; i < poll_samples; ++i) {
      Poller poller(cluster.conninfo("bench_det_poller"), 1s);
      std::this_thread::sleep_for(std::chrono::duration<double>(phase(random)));  // random phase
      const Clock::time_point t0 = Clock::now();
      terminate(admin.get(), poller.pid());
      terminate_us["poll_1s"].push_back(micros(poller.wait_failure() - t0));
    }
    // Polling every 10 s, computed: a uniform phase over the period plus the floor (the server's
    // own time to end the backend). Measuring it for real would take 10 s a sample.
    const auto model = [&](const std::vector<double>& floor_us, double period_s) {
      std::vector<double> out;
      if (floor_us.empty()) return out;
      std::uniform_real_distribution<double> wait(0.0, period_s * 1e6);
      for (int k = 0; k < 1000; ++k)
        out.push_back(wait(random) + floor_us[static_cast<std::size_t>(k) % floor_us.size()]);
      return out;
    };
    terminate_us["poll_10s_model"] = model(terminate_us["floor"], 10);
    for (const auto& [name, values] : terminate_us)
      emit_samples("terminate." + name, values, "us",
                   name == "poll_10s_model"  ? "computed: uniform phase over 10 s + floor sample"
                   : name == "embedded_path" ? "loop callback start to on_down: the library's part"
                                             : "");

    // --- the whole server going away -----------------------------------------------------------
    // The postmaster signals its backends newest first (BackendStartup pushes each on the head
    // of its list, SignalSomeChildren walks it from there), and on two cores the order they get
    // a CPU in is close to that. After a restart the watchdogs are back as soon as the server
    // accepts, the floor only when pg_ctl's wait returns, so without this the floor's backends
    // would be the newest of every stop after the first, and first to end. Before each stop,
    // connection by connection, every watcher's is reopened in turn (the watcher that goes last
    // rotating by round), so that no watcher's backends are newer as a block.
    const auto reopen_interleaved = [&](int round) {
      const PgConn terminator = connect_blocking(admin_conninfo(cluster));  // the server restarted
      const int kinds = static_cast<int>(watched.size()) + 1;               // the floor is kind 0
      for (int i = 0; i < connections; ++i)
        for (int j = 0; j < kinds; ++j) {
          const int kind = (round + 1 + j) % kinds;
          if (kind == 0) {
            floor.reconnect(i);
            continue;
          }
          Watched& w = watched[static_cast<std::size_t>(kind - 1)];
          terminate_watched(terminator.get(), w, i);
          if (!w.tracker->wait_healthy(w.healthy_total, 20s))
            throw std::runtime_error(w.name + ": not back after a terminate before a stop");
        }
    };
    for (const ShutdownMode mode : {ShutdownMode::fast, ShutdownMode::immediate}) {
      const std::string mode_name = mode == ShutdownMode::fast ? "stop_fast" : "stop_immediate";
      std::map<std::string, std::vector<double>> stop_us;
      std::map<std::string, int> told;    // downs with the server's 57P01, per watcher
      std::map<std::string, int> untold;  // downs on EOF alone
      std::map<std::string, std::vector<double>> round_seen;  // this round's detections
      for (int round = 0; round < stops; ++round) {
        if (fair_order) reopen_interleaved(round);
        std::vector<std::vector<TrackedConnection>> before;
        for (Watched& w : watched) {
          if (!w.tracker->wait_healthy(connections, 60s))
            throw std::runtime_error(w.name + ": not all healthy before a stop");
          before.push_back(w.tracker->connections(w.name));
        }
        // Every watcher's backends, watched for their exits from before the stop.
        std::vector<std::vector<int>> backend_pids;
        std::vector<int> all_pids;
        for (const auto& b : before) {
          backend_pids.emplace_back();
          for (const TrackedConnection& c : b) backend_pids.back().push_back(c.backend_pid);
        }
        std::vector<int> floor_pids;
        for (int k = 0; k < floor.size(); ++k) floor_pids.push_back(floor.backend_pid(k));
        for (const auto& pids : backend_pids)
          all_pids.insert(all_pids.end(), pids.begin(), pids.end());
        all_pids.insert(all_pids.end(), floor_pids.begin(), floor_pids.end());
        testing::ProcessExits exits(all_pids, /*realtime=*/true);
        double daemon_before = 0;
        if (daemon) daemon_before = daemon->disconnects();
        std::optional<Clock::time_point> daemon_seen;
        std::thread scraper;
        const Clock::time_point t0 = Clock::now();
        if (daemon)
          scraper = std::thread(
              [&] { daemon_seen = daemon->scrape_until_more_than(daemon_before, 30s); });
        cluster.stop(mode);
        if (!exits.wait(30s))
          throw std::runtime_error("a backend did not exit within 30 s of the stop");
        const auto record_exit = [&](const std::string& name, int pid, Clock::time_point seen) {
          const auto exited = exits.exited_at(pid);
          if (!exited) throw std::runtime_error(name + ": a backend's exit was not stamped");
          stop_us[name + "_backend_exit"].push_back(micros(*exited - t0));
          stop_us[name + "_after_exit"].push_back(micros(seen - *exited));
        };
        for (std::size_t v = 0; v < watched.size(); ++v) {
          Watched& w = watched[v];
          const auto& b = before[v];
          if (!w.tracker->wait_until(
                  w.name,
                  [&](const std::vector<TrackedConnection>& c) {
                    for (std::size_t k = 0; k < b.size(); ++k)
                      if (c[k].downs <= b[k].downs) return false;
                    return true;
                  },
                  30s))
            throw std::runtime_error(w.name + ": not every connection saw the server stop");
          const std::vector<TrackedConnection> now = w.tracker->connections(w.name);
          std::vector<double>& seen_this_round = round_seen[w.name];
          seen_this_round.clear();
          for (const TrackedConnection& c : now)
            seen_this_round.push_back(micros(c.last_down - t0));
          for (std::size_t k = 0; k < now.size() && k < backend_pids[v].size(); ++k)
            record_exit(w.name, backend_pids[v][k], now[k].last_down);
          for (const TrackedConnection& c : now) {
            stop_us[w.name].push_back(micros(c.last_down - t0));
            // Where a gap to the floor goes: before the loop's callback began (the server, the
            // kernel, the scheduler) or inside it; and whether the server's own word (57P01:
            // FATAL on a fast stop, the WARNING on an immediate one) came, or only EOF.
            if (c.last_down_woken != Clock::time_point{})
              stop_us[w.name + "_woken"].push_back(micros(c.last_down_woken - t0));
            const bool said =
                c.last_cause == Cause::server_shutdown || c.last_cause == Cause::immediate_shutdown;
            ++(said ? told[w.name] : untold[w.name]);
          }
        }
        std::vector<Clock::time_point> floor_seen;
        if (!floor.wait_all_detected(30s, floor_seen))
          throw std::runtime_error("floor: not every socket saw the server stop");
        for (std::size_t k = 0; k < floor_seen.size(); ++k) {
          stop_us["floor"].push_back(micros(floor_seen[k] - t0));
          record_exit("floor", floor_pids[k], floor_seen[k]);
        }
        // Paired by round: each stop is one draw of the scheduler's order on two cores that the
        // exiting backends hold, which moves every watcher's median by tens of ms from round to
        // round (a pooled p50 over few rounds mostly says which rounds a watcher was lucky in).
        // The difference of medians within a round is what the watcher adds; the first
        // detection against the first exit shows how long no watcher, the floor included, ran.
        std::vector<double> floor_this_round;
        for (const auto& seen : floor_seen) floor_this_round.push_back(micros(seen - t0));
        double first_exit = 0;
        bool any_exit = false;
        for (const int pid : all_pids)
          if (const auto exited = exits.exited_at(pid)) {
            const double at = micros(*exited - t0);
            if (!any_exit || at < first_exit) first_exit = at;
            any_exit = true;
          }
        for (const auto& [name, seen] : round_seen) {
          stop_us[name + "_round_gap"].push_back(percentile(seen, 50) -
                                                 percentile(floor_this_round, 50));
          if (any_exit)
            stop_us[name + "_first_after_first_exit"].push_back(
                *std::min_element(seen.begin(), seen.end()) - first_exit);
        }
        if (any_exit)
          stop_us["floor_first_after_first_exit"].push_back(
              *std::min_element(floor_this_round.begin(), floor_this_round.end()) - first_exit);
        if (scraper.joinable()) {
          scraper.join();
          if (!daemon_seen) throw std::runtime_error("daemon: the stop never showed in /metrics");
          stop_us["daemon"].push_back(micros(*daemon_seen - t0));
        }
        cluster.start();
        floor.reconnect_all();
        if (daemon) daemon->wait_up(30s);
      }
      stop_us["poll_1s_model"] = model(stop_us["floor"], 1);
      stop_us["poll_10s_model"] = model(stop_us["floor"], 10);
      for (const auto& [name, values] : stop_us)
        emit_samples(mode_name + "." + name, values, "us",
                     name.find("model") != std::string::npos
                         ? "computed: uniform phase over the period + floor sample"
                     : name.ends_with("_woken")
                         ? "when the loop callback that reported the down began"
                     : name.ends_with("_backend_exit")
                         ? "when the watcher's own backends exited (pidfd), from the fault"
                     : name.ends_with("_after_exit")
                         ? "from the watcher's own backend's exit to the watcher knowing"
                     : name.ends_with("_round_gap")
                         ? "per stop: the watcher's median detection minus the floor's"
                     : name.ends_with("_first_after_first_exit")
                         ? "per stop: the watcher's first detection after the first backend's exit"
                         : "");
      for (const Watched& w : watched) {
        emit_value(mode_name + "." + w.name + ".downs_with_57P01", told[w.name], "",
                   "the server's FATAL or WARNING 57P01 read before the end");
        emit_value(mode_name + "." + w.name + ".downs_on_eof", untold[w.name], "",
                   "the connection ended without the server's word");
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detection benchmark failed: %s\n", e.what());
    return 1;
  }
}
