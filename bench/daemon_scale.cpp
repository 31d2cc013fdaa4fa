// The daemon at growing sizes: start-up, an unchanged reload, removing half the targets, and
// SIGTERM -> exit, with its peak RSS and one scrape. Sizes (--sizes, connections in all):
//  - up to 1,000: that many targets of one connection each, PostgreSQL backends;
//  - up to 10,000: that many targets of one connection each, through PgBouncer (the backends
//    would not fit here);
//  - above: skipped with the reason (the daemon accepts at most 10,000 connections in all);
//    bench_library_scale measures 100,000 connections in the library.
// The loop's stall in a reload is read from the daemon's own lag histogram (its 100 ms ticker):
// the increase of pgwatchdog_event_loop_lag_seconds_sum over the reload is an upper bound of the
// longest stall (the sum of all lateness in the window), the bucket is a lower one.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "support/bench_args.hpp"
#include "support/bench_daemon.hpp"
#include "support/figures.hpp"
#include "support/pgbouncer.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/test_cluster.hpp"
#include "support/trusted_cluster.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;
using pgwd::testing::PgBouncer;
using pgwd::testing::PgBouncerSettings;
using testing::TestCluster;

namespace {

/// The daemon's own limit (watchdog/daemon/config.cpp): more is a config error.
constexpr int kDaemonMaxConnections = 10000;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Layout {
  int targets;
  int connections_per_target;
  std::string dsn;
  std::string how;
};

std::string targets_yaml(const Layout& layout, int count) {
  std::string yaml = "defaults:\n  connections: " + std::to_string(layout.connections_per_target) +
                     "\n  backoff_initial: 1s\n  backoff_max: 30s\ntargets:\n";
  for (int i = 0; i < count; ++i)
    yaml += "  - name: t" + std::to_string(i) + "\n    dsn: \"" + layout.dsn + "\"\n";
  return yaml;
}

/// VmHWM (peak RSS) of a process, bytes; -1 if unreadable.
double peak_rss(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  return -1;
}

/// Lines of `name{...}` or `name ...` in an exposition: the number of series of that metric.
long long lines_of(const std::string& exposition, const std::string& name) {
  long long count = 0;
  for (std::size_t at = 0; (at = exposition.find("\n" + name, at)) != std::string::npos; ++at) {
    const char after = exposition[at + 1 + name.size()];
    if (after == '{' || after == ' ') ++count;
  }
  return count;
}

/// Polls the daemon's scrape until `done` holds or `timeout` passes; when it held, or nullopt.
std::optional<Clock::time_point> scrape_until(const BenchDaemon& daemon,
                                              const std::function<bool(const std::string&)>& done,
                                              Clock::duration timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    try {
      if (done(daemon.scrape(60s))) return Clock::now();
    } catch (const std::exception&) {
      // a scrape that fails while the daemon is busy is tried again
    }
    std::this_thread::sleep_for(20ms);  // another process: its scrape is what there is to watch
  }
  return std::nullopt;
}

/// What the daemon's lag histogram says about a reload's window.
struct Stall {
  double loop_cpu;  ///< CPU time of the daemon's loop thread (its main thread) in the window
  double lag_sum;  ///< increase of the lag sum: an upper bound of the stall (all lateness added)
  /// The smallest bucket bound that every lateness in the window fitted under: an upper bound
  /// of the longest single stall; nullopt if one went past the last bound.
  std::optional<double> longest_at_most;
};

constexpr double kLagBounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

/// Seconds the thread has run on a CPU (/proc/PID/task/TID/schedstat, ns); -1 if unreadable.
/// The daemon's loop is its main thread. Unlike the lag, what other processes on a loaded
/// machine take from it does not count.
double thread_cpu(int pid, int tid) {
  std::ifstream schedstat("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
                          "/schedstat");
  double ns = -1;
  schedstat >> ns;
  return ns < 0 ? -1 : ns / 1e9;
}

std::map<double, double> lag_buckets(const std::string& body) {
  std::map<double, double> counts;
  for (const double bound : kLagBounds) {
    char le[32];
    std::snprintf(le, sizeof le, "le=\"%g\"", bound);
    counts[bound] = metric_sum(body, "pgwatchdog_event_loop_lag_seconds_bucket", le);
  }
  return counts;
}

/// Sends SIGHUP and waits until the lag ticker has run a few times after it and `done` holds;
/// the lag meanwhile, or nullopt.
std::optional<Stall> reload_stall(BenchDaemon& daemon,
                                  const std::function<bool(const std::string&)>& done,
                                  Clock::duration timeout) {
  const std::string before = daemon.scrape(60s);
  const double sum_before = metric_sum(before, "pgwatchdog_event_loop_lag_seconds_sum");
  const double count_before = metric_sum(before, "pgwatchdog_event_loop_lag_seconds_count");
  const auto buckets_before = lag_buckets(before);
  const int pid = daemon.process().pid();
  const double cpu_before = thread_cpu(pid, pid);
  daemon.process().send_signal(SIGHUP);
  const auto ok = scrape_until(
      daemon,
      [&](const std::string& body) {
        return metric_sum(body, "pgwatchdog_event_loop_lag_seconds_count") >= count_before + 5 &&
               done(body);
      },
      timeout);
  if (!ok) return std::nullopt;
  const double cpu_after = thread_cpu(pid, pid);
  const std::string after = daemon.scrape(60s);
  Stall stall{cpu_after - cpu_before,
              metric_sum(after, "pgwatchdog_event_loop_lag_seconds_sum") - sum_before,
              {}};
  const double timers = metric_sum(after, "pgwatchdog_event_loop_lag_seconds_count") - count_before;
  const auto buckets_after = lag_buckets(after);
  for (const double bound : kLagBounds)
    if (buckets_after.at(bound) - buckets_before.at(bound) >= timers) {
      stall.longest_at_most = bound;
      break;
    }
  return stall;
}

void emit_longest(const std::string& figure, const Stall& stall) {
  if (stall.longest_at_most)
    emit_value(figure, *stall.longest_at_most, "s",
               "longest single loop lag in the window, at most (lag histogram bucket)");
  else
    emit_skipped(figure, "a loop lag longer than 2.5 s (the last bucket)");
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("scale");
  const BenchArgs args(argc, argv, {"sizes", "daemon", "exit-timeout", "remove-timeout"});
  const std::vector<int> sizes = args.integers("sizes", {1000, 10000, 100000});
  const std::string daemon_binary = args.text("daemon", "");
  const int exit_timeout = args.integer("exit-timeout", 180);
  const int remove_timeout = args.integer("remove-timeout", 60);
  try {
    if (daemon_binary.empty()) throw std::runtime_error("--daemon PATH is required");
    const std::int64_t files = raise_open_files(20000);
    const auto cluster = start_trusted_cluster(1100, {"log_statement = 'none'"});
    const std::string server_dsn = trusted_conninfo(cluster->port(), "bench_scale");
    for (const int size : sizes) {
      const std::string n = std::to_string(size);
      std::unique_ptr<PgBouncer> bouncer;
      Layout layout{size, 1, server_dsn, "PostgreSQL backends"};
      if (size > kDaemonMaxConnections) {
        for (const char* f : {"startup_s", "reload_unchanged_stall_s", "remove_half_s", "sigterm_exit_s"})
          emit_skipped(std::string("scale.") + f + "." + n,
                       "the daemon refuses more than 10000 connections in all (its config check); "
                       "bench_library_scale measures this size in the library");
        continue;
      }
      if (size > 1000) {
        if (files < size + 1000) {
          for (const char* f : {"startup_s", "reload_unchanged_stall_s", "remove_half_s", "sigterm_exit_s"})
            emit_skipped(std::string("scale.") + f + "." + n, "open-files limit too low: " + std::to_string(files));
          continue;
        }
        bouncer = std::make_unique<PgBouncer>(PgBouncerSettings{
            .server_port = cluster->port(), .server_user = kTrustedRole, .user = kTrustedRole,
            .max_clients = size + 1000});
        layout.dsn = trusted_conninfo(bouncer->port(), "bench_scale");
        layout.how = "PgBouncer";
      }
      note("size " + n + ": " + std::to_string(layout.targets) + " targets x " +
           std::to_string(layout.connections_per_target) + " connections (" + layout.how + ")");
      const auto settled = [](int targets) {
        return [targets](const std::string& body) { return metric_sum(body, "pgwatchdog_up") >= targets; };
      };

      // Daemon one: start-up, a scrape, an unchanged reload, SIGTERM -> exit.
      {
        const Clock::time_point started = Clock::now();
        BenchDaemon daemon(daemon_binary, targets_yaml(layout, layout.targets), 300s);
        const auto up = scrape_until(daemon, settled(layout.targets), 600s);
        if (!up) throw std::runtime_error("size " + n + ": the daemon did not settle");
        emit_value("scale.startup_s." + n, seconds(*up - started), "s",
                   "start until every target up (" + layout.how + ")");
        const Clock::time_point scrape_start = Clock::now();
        const std::string body = daemon.scrape(120s);
        emit_value("scale.scrape_s." + n, seconds(Clock::now() - scrape_start), "s");
        emit_value("scale.metrics_bytes." + n, static_cast<double>(body.size()), "B");
        const auto stall = reload_stall(daemon, [](const std::string&) { return true; }, 300s);
        if (stall) {
          emit_value("scale.reload_unchanged_stall_s." + n, stall->lag_sum, "s",
                     "SIGHUP, nothing changed: increase of the loop lag sum (upper bound of the stall)");
          emit_longest("scale.reload_unchanged_longest_lag_s." + n, *stall);
          emit_value("scale.reload_unchanged_loop_cpu_s." + n, stall->loop_cpu, "s",
                     "CPU of the daemon's loop thread from SIGHUP to the reload done");
        } else
          emit_skipped("scale.reload_unchanged_stall_s." + n, "the reload did not finish within 300 s");
        emit_value("scale.peak_rss_bytes." + n, peak_rss(daemon.process().pid()), "B");
        const Clock::time_point term = Clock::now();
        daemon.process().send_signal(SIGTERM);
        if (daemon.process().wait_exit(std::chrono::seconds(exit_timeout)))
          emit_value("scale.sigterm_exit_s." + n, seconds(Clock::now() - term), "s",
                     "SIGTERM until the process exited");
        else
          emit_skipped("scale.sigterm_exit_s." + n,
                       "did not exit within " + std::to_string(exit_timeout) + " s of SIGTERM");
      }
      // Daemon two: a reload that removes half the targets.
      {
        BenchDaemon daemon(daemon_binary, targets_yaml(layout, layout.targets), 300s);
        if (!scrape_until(daemon, settled(layout.targets), 600s))
          throw std::runtime_error("size " + n + ": the second daemon did not settle");
        const int half = layout.targets / 2;
        daemon.rewrite_config(targets_yaml(layout, half));
        const Clock::time_point remove_start = Clock::now();
        const auto removed_stall = reload_stall(
            daemon, [&](const std::string& b) { return lines_of(b, "pgwatchdog_up") <= half; },
            std::chrono::seconds(remove_timeout));
        if (removed_stall) {
          emit_value("scale.remove_half_s." + n, seconds(Clock::now() - remove_start), "s",
                     "SIGHUP removing half the targets, until /metrics shows them gone");
          emit_value("scale.remove_half_stall_s." + n, removed_stall->lag_sum, "s");
          emit_longest("scale.remove_half_longest_lag_s." + n, *removed_stall);
          emit_value("scale.remove_half_loop_cpu_s." + n, removed_stall->loop_cpu, "s",
                     "CPU of the daemon's loop thread from SIGHUP to the targets gone");
        } else {
          emit_skipped("scale.remove_half_s." + n, "removing " + std::to_string(half) +
                                                       " targets did not finish within " +
                                                       std::to_string(remove_timeout) + " s");
        }
      }  // SIGKILL if still busy
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale benchmark failed: %s\n", e.what());
    return 1;
  }
}
