// Reconnect storm: 1000 connections to one server that restarts. They must all come back, each
// retrying no later than its backoff allows, their attempts spread by the backoff's jitter rather
// than arriving in lockstep, while the loop they share spends little time at a stretch. How fast
// in wall time is scripts/bench's question (reconnect_storm), on a quiet machine: here the
// server's 1000 backends and the loop share 2 cores, and the wall clock measures the machine.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pgwd/prometheus_collectable.hpp"
#include "support/loop_gaps.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ClusterSettings;
using pgwd::testing::ShutdownMode;
using pgwd::testing::WatchdogFixture;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kConnections = 1000;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
constexpr auto kBackoffMax = 2s;

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// 1000 client sockets plus the test's own: raise the soft open-files limit if it is low.
void ensure_open_files(rlim_t wanted) {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  REQUIRE_MESSAGE(limit.rlim_cur >= static_cast<rlim_t>(kConnections) + 100,
                  "the open-files hard limit is too low for this test: ", limit.rlim_max);
}

using pgwd::testing::SchedStat;

/// The calling thread's scheduler statistics, zeros where the kernel has none.
SchedStat read_schedstat() {
  return pgwd::testing::thread_schedstat().value_or(SchedStat{});
}

/// The most time points that fall in any window [t, t + width).
std::size_t most_in_window(std::vector<Clock::time_point> times, Clock::duration width) {
  std::sort(times.begin(), times.end());
  std::size_t most = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < times.size(); ++i) {
    while (times[i] - times[first] >= width) ++first;
    most = std::max(most, i - first + 1);
  }
  return most;
}

/// Cumulative count of pgwatchdog_event_loop_lag_seconds samples up to each bucket bound.
std::string lag_buckets(const std::shared_ptr<SeriesStore>& store) {
  std::string out;
  for (const auto& family : prometheus_collectable(store)->Collect()) {
    if (family.name != "pgwatchdog_event_loop_lag_seconds") continue;
    for (const auto& m : family.metric)
      for (const auto& b : m.histogram.bucket)
        out += " le" + std::to_string(b.upper_bound).substr(0, 5) + "=" +
               std::to_string(b.cumulative_count);
  }
  return out;
}

double percent(std::size_t part, std::size_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

void storm(WatchdogFixture& f, std::string_view auth) {
  constexpr auto n = static_cast<std::size_t>(kConnections);
  ensure_open_files(4096);

  TargetOptions o = f.target("storm", kConnections);
  o.backoff_initial = 100ms;  // the default
  o.backoff_max = kBackoffMax;
  // Each connection's own jittered backoff is what this test judges; the scout (on by default)
  // hurries the waiting ones once one is back, on purpose sooner than they announced.
  o.scout_interval = 0ms;
  // The server's own pace decides how long 1000 forks take: on a loaded machine some backends
  // took over 5 s to answer and the attempts timed out. The deadline is not what this test
  // judges, so it is far from being reached.
  o.connect_timeout = 60s;
  // Likewise a heartbeat that falls into the restart: with 1000 backends being stopped and forked
  // on two cores, its answer took over 5 s once (the loop's thread waited 39 s for a CPU during
  // that storm) and the connection was counted as probe_timeout rather than server_shutdown.
  // The cause of each disconnect is what this test judges, not the probe's deadline.
  o.probe_timeout = 60s;

  // Our own 10 ms ticker on the loop: its worst gap is how late the loop ran, split into the wait
  // for a CPU (the machine's) and the rest (the loop's own: running, or blocked in a call).
  pgwd::testing::LoopTicker ticker(f.loop.base());

  // Connecting 1000 at once: the postmaster forks the backends one by one.
  const auto added_at = Clock::now();
  f.watchdog->add_target(o);
  // The deadlines of these waits only catch a connection that never comes back: how fast is
  // scripts/bench's question (measured: 36 s to connect 1000 here beside a CPU hog and two builds).
  REQUIRE(f.loop.run_until([&] { return f.all_healthy("storm", n); }, 150s));
  const auto connected_in = Clock::now() - added_at;
  MESSAGE(auth, ": ", n, " connections healthy ", ms(connected_in),
          " ms after add_target (worst tick gap ", ms(ticker.gaps().worst_gap()), " ms, of which ",
          ms(ticker.gaps().worst_gap_split().waiting), " ms waiting for a CPU; ",
          f.observer.connect_failures.size(), " failed attempts)");
  if (!f.observer.connect_failures.empty()) {
    const auto& first = f.observer.connect_failures.front().event;
    FAIL_CHECK(f.observer.connect_failures.size(), " connect attempts failed, the first with ",
               to_string(first.cause), " ", first.sqlstate, ": ", first.message);
  }
  REQUIRE(f.observer.healthy.size() == n);
  // What follows judges the storm alone.
  const std::size_t failures_before = f.observer.connect_failures.size();
  const std::size_t attempts_before = f.observer.attempts.size();
  const double successes_before =
      f.metric("pgwatchdog_reconnects_total", {{"target", "storm"}, {"result", "success"}});
  const double failures_counted_before =
      f.metric("pgwatchdog_reconnects_total", {{"target", "storm"}, {"result", "failure"}});
  const double lag_count_before =
      f.metric("pgwatchdog_event_loop_lag_seconds_count", {{"loop", f.watchdog->name()}});
  const double lag_sum_before =
      f.metric("pgwatchdog_event_loop_lag_seconds_sum", {{"loop", f.watchdog->name()}});

  // pg_ctl restart -m fast on a helper thread; the loop keeps running here.
  ticker.gaps().restart();
  const auto restart_at = Clock::now();
  const SchedStat before_storm = read_schedstat();
  std::atomic<bool> restarted{false};
  std::atomic<Clock::rep> ready_at{0};
  std::thread restarter([&] {
    f.cluster.restart(ShutdownMode::fast);  // returns once the server accepts connections
    ready_at = Clock::now().time_since_epoch().count();
    restarted = true;
  });
  const bool came_back = f.loop.run_until(
      [&] { return restarted && f.observer.healthy.size() >= 2 * n && f.all_healthy("storm", n); },
      150s);
  restarter.join();
  const auto worst_gap = ticker.gaps().worst_gap();
  const auto worst_gap_end = ticker.gaps().worst_gap_end();
  const SchedStat worst_split = ticker.gaps().worst_gap_split();
  const auto worst_not_waiting = ticker.gaps().worst_own();
  const SchedStat storm_stat = read_schedstat();
  const auto storm_time = Clock::now() - restart_at;
  REQUIRE(came_back);
  const Clock::time_point ready{Clock::duration(ready_at.load())};

  // Every connection noticed the restart.
  CHECK(f.observer.down.size() == n);
  Clock::time_point first_down = Clock::time_point::max();
  Clock::time_point last_down{};
  for (const auto& d : f.observer.down) {
    first_down = std::min(first_down, d.at);
    last_down = std::max(last_down, d.at);
  }
  const auto unexpected =
      std::find_if(f.observer.down.begin(), f.observer.down.end(), [](const auto& d) {
        return d.event.cause != Cause::server_shutdown || d.event.sqlstate != "57P01";
      });
  if (unexpected != f.observer.down.end())
    FAIL_CHECK("connection ", unexpected->event.connection.index, " down ",
               ms(unexpected->at - restart_at), " ms after the restart started with ",
               to_string(unexpected->event.cause), " ", unexpected->event.sqlstate, ": ",
               unexpected->event.message);

  // All back within seconds of the server being ready. A connection's next attempt is at most
  // backoff_max away, so the bound is backoff_max plus time to connect them all.
  Clock::time_point first_back = Clock::time_point::max();
  Clock::time_point last_back{};
  Clock::duration worst_outage{0};
  for (std::size_t i = n; i < f.observer.healthy.size(); ++i) {
    const auto& h = f.observer.healthy[i];
    first_back = std::min(first_back, h.at);
    last_back = std::max(last_back, h.at);
    if (h.event.outage)
      worst_outage =
          std::max(worst_outage, std::chrono::duration_cast<Clock::duration>(*h.event.outage));
  }
  MESSAGE(auth, ": restart: downs from ", ms(first_down - restart_at), " to ",
          ms(last_down - restart_at), " ms after pg_ctl restart started; server ready after ",
          ms(ready - restart_at), " ms; healthy again from ", ms(first_back - ready), " to ",
          ms(last_back - ready), " ms after pg_ctl reported it ready; worst outage ",
          ms(worst_outage), " ms");
  // How long the last one took to come back is reported, not asserted: after pg_ctl returns, the
  // server still forks 1000 backends on the machine's 2 cores, and the loop's thread waits its
  // turn for a CPU meanwhile (measured: up to 9 s of the storm on a loaded machine). Both are the
  // machine's, and scripts/bench measures this wall time on a quiet one (reconnect_storm). What
  // the watchdog decides is asserted below instead: every failed attempt announced a delay of at
  // most backoff_max and the next attempt honoured it (so no connection waits longer than
  // backoff_max for its next try), and the loop's own time per tick gap is bounded.
  const auto waited_for_cpu = storm_stat.waiting - before_storm.waiting;
  MESSAGE(auth, ": all back ", ms(last_back - ready),
          " ms after the server was ready; the loop thread waited ", ms(waited_for_cpu),
          " ms for a CPU during the storm");
  CHECK(f.observer.healthy.size() == 2 * n);
  CHECK(f.metric("pgwatchdog_up", {{"target", "storm"}}) == 1);
  CHECK(f.metric("pgwatchdog_connections", {{"target", "storm"}, {"state", "healthy"}}) == n);
  CHECK(f.metric("pgwatchdog_reconnects_total", {{"target", "storm"}, {"result", "success"}}) -
            successes_before ==
        n);
  CHECK(f.metric("pgwatchdog_disconnects_total",
                 {{"target", "storm"}, {"cause", "server_shutdown"}}) == n);

  // Attempts while the server was away failed and announced their delay; each next attempt
  // honoured it, and every failure was retried (all are healthy now).
  const std::vector<pgwd::testing::RecordingObserver::Stamped<ConnectFailedEvent>> failures(
      f.observer.connect_failures.begin() + static_cast<std::ptrdiff_t>(failures_before),
      f.observer.connect_failures.end());
  const std::vector<pgwd::testing::RecordingObserver::Stamped<ReconnectAttemptEvent>> attempts(
      f.observer.attempts.begin() + static_cast<std::ptrdiff_t>(attempts_before),
      f.observer.attempts.end());
  std::map<std::string, int> failure_causes;
  for (const auto& fail : failures) {
    ++failure_causes[std::string(to_string(fail.event.cause))];
    // The first retry after the loss drew from [50, 100] ms; failures draw from a ceiling of at
    // least 200 ms.
    CHECK(fail.event.retry_in >= 100ms);
    CHECK(fail.event.retry_in <= kBackoffMax);
  }
  std::vector<std::vector<const pgwd::testing::RecordingObserver::Stamped<ReconnectAttemptEvent>*>>
      attempts_of(n);
  for (const auto& a : attempts)
    attempts_of[static_cast<std::size_t>(a.event.connection.index)].push_back(&a);
  std::size_t followed = 0;
  for (const auto& fail : failures) {
    for (const auto* a : attempts_of[static_cast<std::size_t>(fail.event.connection.index)]) {
      if (a->at < fail.at || a->event.attempt != fail.event.attempt + 1) continue;
      ++followed;
      CHECK(a->at - fail.at >= fail.event.retry_in - 1ms);
      break;
    }
  }
  CHECK(followed == failures.size());
  CHECK(f.metric("pgwatchdog_reconnects_total", {{"target", "storm"}, {"result", "failure"}}) -
            failures_counted_before ==
        static_cast<double>(failures.size()));
  std::string causes_text;
  for (const auto& [cause, count] : failure_causes)
    causes_text += " " + cause + "=" + std::to_string(count);
  MESSAGE(auth, ": ", attempts.size(), " reconnect attempts, ", failures.size(),
          " failed:", causes_text.empty() ? " none" : causes_text);

  // Jitter, judged on the times the watchdog chose. A failed attempt announces its delay, drawn
  // uniformly from [c/2, c] where the ceiling c is at least 200 ms once an attempt has failed
  // (100 ms for the first retry after the loss, doubling per failure up to backoff_max). Even if
  // every failure happened at the same instant and drew from the narrowest range, [100, 200] ms,
  // a 10 ms window would hold 1/10 of them on average; in a million simulated rounds of 100 such
  // delays the fullest sliding 10 ms window held at most 31% of them (24% of 200, 16% of 1000).
  // Lockstep would put a whole round in one window. Bound: 35%, given at least 100 failures (the
  // server is away for about a second and most first retries, 50..100 ms after the loss, fall in
  // that time: 642..1739 failures in 15 runs without sanitizer).
  std::vector<Clock::time_point> scheduled;
  for (const auto& fail : failures) scheduled.push_back(fail.at + fail.event.retry_in);
  const std::size_t most_scheduled = most_in_window(scheduled, 10ms);
  // The first retry after a loss announces no delay: it is drawn from [50, 100] ms.
  std::vector<Clock::time_point> all_attempts;
  std::vector<Clock::time_point> first_retries;
  Clock::duration shortest_first{Clock::duration::max()};
  Clock::duration longest_first{0};
  for (const auto& a : attempts) {
    all_attempts.push_back(a.at);
    if (a.event.attempt != 1) continue;
    first_retries.push_back(a.at);
    const auto down = std::find_if(
        f.observer.down.begin(), f.observer.down.end(),
        [&](const auto& d) { return d.event.connection.index == a.event.connection.index; });
    REQUIRE(down != f.observer.down.end());
    shortest_first = std::min(shortest_first, a.at - down->at);
    longest_first = std::max(longest_first, a.at - down->at);
  }
  CHECK(first_retries.size() == n);
  CHECK(shortest_first >= 50ms - 1ms);
  // When the attempts really started adds the loop's delays: a loop thread that waited hundreds
  // of ms for a CPU (see below) starts every timer that fell due meanwhile in one go. Those
  // times are reported, not asserted: on this machine they measure the scheduler as much as the
  // jitter.
  const std::size_t most_first = most_in_window(first_retries, 10ms);
  const std::size_t most_all = most_in_window(all_attempts, 10ms);
  MESSAGE(auth,
          ": fullest 10 ms window of the retry times chosen after a failure: ", most_scheduled,
          " of ", scheduled.size(), " (", percent(most_scheduled, scheduled.size()),
          "%); attempts as started: ", most_all, " of ", all_attempts.size(), " (",
          percent(most_all, all_attempts.size()), "%), first retries after the loss ", most_first,
          " of ", first_retries.size(), " (", percent(most_first, first_retries.size()),
          "%), started ", ms(shortest_first), "..", ms(longest_first), " ms after the loss");
  if (scheduled.size() >= 100) {
    CHECK(percent(most_scheduled, scheduled.size()) <= 35.0);
  } else if (kSanitized || waited_for_cpu > 250ms) {
    // Seen with ASan (0 failures in 1 run of 5) and TSan (every run), possible beside a CPU hog:
    // the loop, starved of CPU by the exiting backends, noticed the losses late and retried after
    // the server was back. That is the machine's doing; the fake-clock tests of the backoff
    // judge its jitter whatever the load.
    MESSAGE(auth, ": only ", scheduled.size(), " failed attempts (the loop waited ",
            ms(waited_for_cpu), " ms for a CPU): too few to judge the jitter in this run");
  } else {
    FAIL_CHECK("only ", scheduled.size(),
               " failed attempts, too few to judge the jitter, though the loop waited only ",
               ms(waited_for_cpu),
               " ms for a CPU: did the loop notice the losses only after the server was back?");
  }

  // A responsive loop. The server's 1000 backends share the machine's 2 cores with the loop: when
  // they all exit (and later all start) at once, the loop's thread is runnable but waits its turn
  // in the kernel's run queue for most of a second (measured: ~700 ms of the worst ~800 ms gap).
  // That is the test bench, not the watchdog, which would normally run elsewhere than the server;
  // what the watchdog answers for is the rest of each gap: time on a CPU or blocked in a call.
  // That must stay well under a second (measured: under 100 ms).
  const double lag_count =
      f.metric("pgwatchdog_event_loop_lag_seconds_count", {{"loop", f.watchdog->name()}}) -
      lag_count_before;
  const double lag_sum =
      f.metric("pgwatchdog_event_loop_lag_seconds_sum", {{"loop", f.watchdog->name()}}) -
      lag_sum_before;
  MESSAGE(auth, ": during the storm the worst 10 ms tick gap was ", ms(worst_gap),
          " ms; pgwatchdog_event_loop_lag_seconds: ", lag_count, " samples, sum ", lag_sum * 1000.0,
          " ms, mean ", lag_count > 0 ? lag_sum * 1000.0 / lag_count : 0.0,
          " ms; cumulative buckets (whole test):", lag_buckets(f.metrics));
  MESSAGE(auth, ": the worst gap ended ", ms(worst_gap_end - restart_at),
          " ms after the restart started: ", ms(worst_split.on_cpu), " ms on a CPU, ",
          ms(worst_split.waiting),
          " ms waiting for one; the worst gap less its wait for a CPU: ", ms(worst_not_waiting),
          " ms; over the storm's ", ms(storm_time), " ms the loop's thread ran ",
          ms(storm_stat.on_cpu - before_storm.on_cpu), " ms and waited for a CPU ",
          ms(storm_stat.waiting - before_storm.waiting), " ms");
  // The loop's own part of its worst gap: time on a CPU or blocked in a call, never the wait for
  // a CPU (the raw gap, up to 3.9 s when the machine was loaded, is reported above).
  CHECK(worst_not_waiting < 500ms);
}

struct TrustStormFixture : WatchdogFixture {
  // trust for the storm's role: 1000 SCRAM exchanges (a few ms of CPU each, inside libpq on the
  // loop) would dominate what is measured.
  TrustStormFixture()
      : WatchdogFixture(
            ClusterSettings{.extra_config = {"max_connections = 1100", "shared_buffers = 128MB"},
                            .hba_lines = {"host all watchdog 127.0.0.1/32 trust"}}) {}
};

struct ScramStormFixture : WatchdogFixture {
  ScramStormFixture()
      : WatchdogFixture(
            ClusterSettings{.extra_config = {"max_connections = 1100", "shared_buffers = 128MB"}}) {
  }
};

}  // namespace

// Not in the "thread" suite (ThreadSanitizer): the library is single-threaded on its loop, and
// the helper-thread restart is already run under TSan by server_restart_test.cpp. Under TSan this
// loop runs several times slower and, sharing 2 cores with 1000 backends, noticed the losses
// 40..1640 ms after the restart began and made its first retries 355..1606 ms after them: the
// server was back by then, no attempt failed, and the backoff and jitter checks had nothing to
// check (TSan reported no race; about 7 s a run).
TEST_CASE_FIXTURE(TrustStormFixture,
                  "storm: 1000 connections through pg_ctl restart -m fast - all back with "
                  "jittered attempts and a responsive loop") {
  storm(*this, "trust");
}

// The same storm with SCRAM, as the default pg_hba.conf asks. libpq computes SCRAM's salted
// password (4096 HMAC-SHA-256 rounds, ~2.5 ms of CPU here) inside PQconnectPoll on the loop, and
// libevent runs every connection that became readable in one iteration. Before the watchdog
// bounded its concurrent connect attempts (WatchdogOptions::max_concurrent_connects) this test
// failed: the loop was busy for up to a second at a time (worst gap less its wait for a CPU
// 658..969 ms) and the last connection came back 3.0..5.4 s after the server was ready. Under a
// sanitizer SCRAM costs several times more CPU and no wall-clock bound holds: skipped there.
TEST_CASE_FIXTURE(ScramStormFixture,
                  "storm: 1000 connections with scram-sha-256 through pg_ctl restart -m fast") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  std::puts(
      "SKIPPED: the SCRAM storm's time bounds do not hold under a sanitizer (SCRAM costs several "
      "times more CPU)");
  std::exit(77);
#endif
  storm(*this, "scram");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
