// The library at growing sizes, embedded (LoopHost), every connection to a closed port (nothing
// listens there: each attempt is refused at once and backs off), so that 100,000 connections fit
// on this machine and what is measured is the watchdog's own bookkeeping:
//  - startup:     add_target of all of them (targets of 1000) until every connection has made
//                 its first attempt;
//  - remove_half: remove_target of half the targets, on the loop;
//  - destroy:     destroying the Watchdog with the other half (what SIGTERM costs the daemon).
// and, with that many targets of one connection each (up to 10,000: --target-sizes), removing
// half the targets, which is what costs metric series (each target has a row of them in the
// series store, dropped in O(1)):
//  - remove_half_targets:            Watchdog::remove_targets, what a reload does, until every
//                                    connection is closed;
//  - remove_half_targets_one_by_one: remove_target of each.
// and the fleet operations at --bulk-sizes targets of one connection each
// (bulk_operations below): adding them, removing half, removing the rest, each with the longest
// busy stretch of the loop thread.
// Sizes run in ascending order; a size whose remove + destroy is predicted, from the previous
// size and a quadratic growth, to take longer than --budget seconds is skipped with the
// prediction printed (the landed code is quadratic in both; the fixed code will not be skipped).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/bench_args.hpp"
#include "support/connection_tracker.hpp"
#include "support/daemon_process.hpp"
#include "support/figures.hpp"
#include "support/loop_host.hpp"
#include "support/process_stats.hpp"
#include "support/quiet_logger.hpp"
#include "support/stretch_ticker.hpp"
#include "support/targets.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;

namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

enum class Removal { together, one_by_one };

/// `targets` targets of one connection each to a closed port, then half of them removed as
/// `how` says, on the loop: the seconds that took.
double remove_half_targets(int targets, Removal how, const std::string& conninfo) {
  WatchdogOptions options;
  options.logger = quiet_logger();
  LoopHost host(options);
  host.call([&](Watchdog& w) {
    for (int i = 0; i < targets; ++i) {
      TargetOptions target;
      target.name = "t" + std::to_string(i);
      target.conninfo = conninfo;
      w.add_target(target);
    }
  });
  std::vector<std::string> half;
  for (int i = 0; i < targets; i += 2) half.push_back("t" + std::to_string(i));  // interleaved
  const Clock::time_point start = Clock::now();
  host.call([&](Watchdog& w) {
    if (how == Removal::one_by_one)
      for (const std::string& name : half) w.remove_target(name);
    else
      w.remove_targets(half);
  });
  std::size_t closing = 1;  // remove_targets closes over several loop passes
  while (closing > 0) host.call([&](Watchdog& w) { closing = w.targets_closing(); });
  return seconds(Clock::now() - start);
}

/// Fleet operations at `size` targets of one connection each, all to a closed port (their
/// first attempts refused at once, then backing off: what is measured is the watchdog's own
/// work), with the stretch ticker on the loop (support/stretch_ticker.hpp): the most CPU the
/// loop thread spent between two of its 5 ms ticks, which bounds the longest loop step from
/// above, and counts what a LoopHost::call does on the loop like any callback.
///  - add:        add_target of all of them, in host steps of at most 5 ms each (as the daemon's
///                reload does; add_target is one call a target, ~10 µs);
///  - remove_half: remove_targets of every other one, 250 names a call (as the daemon's reload),
///                until targets_closing() is 0;
///  - remove_all:  remove_targets of the rest, likewise.
void bulk_operations(int size, const std::string& conninfo) {
  using namespace std::chrono;
  const std::string n = std::to_string(size);
  WatchdogOptions options;
  options.logger = quiet_logger();
  LoopHost host(options);
  std::unique_ptr<StretchTicker> ticker;
  host.call([&](Watchdog&) { ticker = std::make_unique<StretchTicker>(host.timing()); });
  // The longest stretch (seconds of loop CPU), and how much of it was the watchdog's callbacks
  // as a figure of its own: the rest is the host's calls (add_target, remove_targets) and libevent.
  const auto stretch = [&](const std::string& figure) {
    StretchTicker::Stretch longest;
    host.call([&](Watchdog&) { longest = ticker->longest(); });
    emit_value(figure + "_in_callbacks_cpu_s." + n, duration<double>(longest.in_callbacks).count(),
               "s", "of the longest stretch, the watchdog's own callbacks");
    return duration<double>(longest.cpu).count();
  };
  const auto reset = [&] { host.call([&](Watchdog&) { ticker->reset(); }); };
  std::vector<std::string> names;
  for (int i = 0; i < size; ++i) names.push_back("bulk" + std::to_string(i));

  reset();
  Clock::time_point start = Clock::now();
  for (std::size_t next = 0; next < names.size();) {
    host.call([&](Watchdog& w) {
      const Clock::time_point until = Clock::now() + 5ms;
      for (; next < names.size() && Clock::now() < until; ++next) {
        TargetOptions target;
        target.name = names[next];
        target.conninfo = conninfo;
        w.add_target(target);
      }
    });
  }
  emit_value("scale.bulk_add_s." + n, seconds(Clock::now() - start), "s",
             "add_target of every target, in host steps of 5 ms");
  emit_value("scale.bulk_add_longest_stretch_cpu_s." + n, stretch("scale.bulk_add_longest_stretch"),
             "s", "the most loop CPU between two 5 ms ticks while adding");

  // As the daemon's reload does (kRemovalsPerStep): 250 names a call, a call a loop step
  // (remove_targets' own part, a few µs a target, is synchronous; the closing it spreads over
  // the passes after).
  const auto remove = [&](const std::vector<std::string>& going, const std::string& what) {
    reset();
    const Clock::time_point t0 = Clock::now();
    double in_calls_s = 0;
    for (std::size_t from = 0; from < going.size(); from += 250) {
      const std::vector<std::string> chunk(
          going.begin() + static_cast<std::ptrdiff_t>(from),
          going.begin() + static_cast<std::ptrdiff_t>(std::min(going.size(), from + 250)));
      host.call([&](Watchdog& w) {
        const Clock::time_point c0 = Clock::now();
        w.remove_targets(chunk);
        in_calls_s += seconds(Clock::now() - c0);
      });
    }
    std::size_t closing = 1;
    while (closing > 0) host.call([&](Watchdog& w) { closing = w.targets_closing(); });
    emit_value("scale.bulk_" + what + "_s." + n, seconds(Clock::now() - t0), "s",
               "remove_targets, 250 names a call, until every connection closed");
    emit_value("scale.bulk_" + what + "_call_us_per_target." + n,
               in_calls_s * 1e6 / static_cast<double>(going.size()), "us",
               "inside the remove_targets calls, per target (their synchronous part and each "
               "call's first closing step)");
    emit_value("scale.bulk_" + what + "_longest_stretch_cpu_s." + n,
               stretch("scale.bulk_" + what + "_longest_stretch"), "s",
               "the most loop CPU between two 5 ms ticks until every connection closed");
  };
  std::vector<std::string> half, rest;
  for (int i = 0; i < size; ++i) (i % 2 == 0 ? half : rest).push_back(names[i]);
  remove(half, "remove_half");
  remove(rest, "remove_all");
  host.call([&](Watchdog&) { ticker.reset(); });
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("scale");
  const BenchArgs args(argc, argv, {"sizes", "budget", "target-sizes", "bulk-sizes"});
  const std::vector<int> bulk_sizes = args.integers("bulk-sizes", {1000, 10000, 100000});
  const std::vector<int> sizes = args.integers("sizes", {1000, 10000, 100000});
  const std::vector<int> target_sizes = args.integers("target-sizes", {1000, 10000});
  const double budget = args.number("budget", 120);
  try {
    for (const int size : bulk_sizes)
      bulk_operations(size, "host=127.0.0.1 port=" + std::to_string(testing::free_tcp_port()) +
                                " user=nobody dbname=postgres connect_timeout=5");
    for (const int targets : target_sizes) {
      const std::string n = std::to_string(targets);
      const std::string conninfo =
          "host=127.0.0.1 port=" + std::to_string(testing::free_tcp_port()) +
          " user=nobody dbname=postgres connect_timeout=5";
      emit_value("scale.library_remove_half_targets_s." + n,
                 remove_half_targets(targets, Removal::together, conninfo), "s",
                 "remove_targets of half the targets (one connection each)");
      emit_value("scale.library_remove_half_targets_one_by_one_s." + n,
                 remove_half_targets(targets, Removal::one_by_one, conninfo), "s",
                 "remove_target of each of half the targets");
    }
    std::optional<std::pair<int, double>> previous;  // size, remove + destroy seconds
    for (const int size : sizes) {
      const std::string n = std::to_string(size);
      if (previous) {
        const double ratio = static_cast<double>(size) / previous->first;
        const double predicted = previous->second * ratio * ratio;
        if (predicted > budget) {
          char reason[200];
          std::snprintf(
              reason, sizeof reason,
              "predicted %.0f s for remove + destroy (quadratic from %d: %.2f s) > budget %.0f s",
              predicted, previous->first, previous->second, budget);
          for (const char* f : {"library_startup_s", "library_remove_half_s", "library_destroy_s"})
            emit_skipped(std::string("scale.") + f + "." + n, reason);
          continue;
        }
      }
      const int closed_port = testing::free_tcp_port();  // bound a moment ago, now nobody's
      const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(closed_port) +
                                   " user=nobody dbname=postgres connect_timeout=5";
      ConnectionTracker tracker;
      WatchdogOptions options;
      options.observer = &tracker;
      options.logger = quiet_logger();
      LoopHost host(options);
      const Clock::time_point start = Clock::now();
      host.call([&](Watchdog& w) {
        add_connections(w, "lib", conninfo, size);  // default backoff: attempts keep queueing
      });
      const Clock::time_point added = Clock::now();
      if (!tracker.wait_connect_failures(static_cast<std::uint64_t>(size), 600s))
        throw std::runtime_error("size " + n + ": not every connection made its first attempt");
      emit_value("scale.library_startup_s." + n, seconds(Clock::now() - start), "s",
                 "add_target until every connection attempted once (closed port)");
      emit_value("scale.library_add_targets_s." + n, seconds(added - start), "s");
      const int targets = (size + kConnectionsPerTarget - 1) / kConnectionsPerTarget;
      const Clock::time_point remove_start = Clock::now();
      host.call([&](Watchdog& w) {
        for (int k = 0; k < targets / 2; ++k) w.remove_target("lib" + std::to_string(k));
      });
      const double removed = seconds(Clock::now() - remove_start);
      emit_value("scale.library_remove_half_s." + n, removed, "s",
                 "remove_target of half the targets");
      const Clock::time_point destroy_start = Clock::now();
      host.destroy_watchdog();
      const double destroyed = seconds(Clock::now() - destroy_start);
      emit_value("scale.library_destroy_s." + n, destroyed, "s", "~Watchdog with the other half");
      previous = std::pair(size, removed + destroyed);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "library scale benchmark failed: %s\n", e.what());
    return 1;
  }
}
