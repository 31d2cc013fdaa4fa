// WatchdogThread against a real cluster: a watchdog on a thread of its own, called from many
// threads while backends are killed. In the doctest suite "thread", which CI also runs under
// ThreadSanitizer.
#include "pgwd/watchdog_thread.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "support/metrics_reader.hpp"
#include "support/pool_fixture.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::TestCluster;
using pgwd::testing::TestLoop;
using pgwd::testing::WatchdogHarness;
using Clock = std::chrono::steady_clock;

namespace {

/// Whether the server has ended every backend of `application_name` within a few seconds. Our
/// side closed them (PQfinish) before the destructor returned; the backend's exit, and its row
/// leaving pg_stat_activity, follow on the server's own time (seen lagging under load).
bool backends_gone(const pgwd::testing::TestCluster& cluster, const std::string& application_name) {
  // Each look is a new admin connection (a backend forked): paced, so as not to load the server
  // whose backends we wait for.
  return pgwd::testing::eventually([&] { return cluster.backend_pids(application_name).empty(); },
                                   std::chrono::seconds(10), std::chrono::milliseconds(20));
}

/// Records events from the watchdog's thread; the test's threads wait on it.
class ThreadObserver : public Observer {
 public:
  void on_healthy(const HealthyEvent& e) override {
    const std::lock_guard lock(mutex_);
    threads_.insert(std::this_thread::get_id());
    ++healthy_[e.connection.target];
    ++events_;
    changed_.notify_all();
  }
  void on_state_change(const StateChangeEvent&) override {
    const std::lock_guard lock(mutex_);
    ++events_;
    changed_.notify_all();
  }
  void on_down(const DownEvent& e) override {
    {
      const std::lock_guard lock(mutex_);
      threads_.insert(std::this_thread::get_id());
      downs_[e.connection.target].push_back(Clock::now());
      ++events_;
      changed_.notify_all();
    }
    if (!on_down_hook) return;
    on_down_hook(e);
    const std::lock_guard lock(mutex_);
    ++hooks_returned_;
    changed_.notify_all();
  }

  /// Waits until `done` holds (checked under the lock) or the timeout passes.
  template <typename Pred>
  bool wait(Pred done, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done(*this); });
  }
  /// Events seen so far (any kind): a waiter compares it before and after.
  std::uint64_t events() const { return events_; }
  std::uint64_t events_now() const {
    const std::lock_guard lock(mutex_);
    return events_;
  }
  int healthy(const std::string& t) const { return healthy_.count(t) ? healthy_.at(t) : 0; }
  std::size_t downs(const std::string& t) const {
    return downs_.count(t) ? downs_.at(t).size() : 0;
  }
  Clock::time_point last_down(const std::string& t) const { return downs_.at(t).back(); }
  std::size_t downs_now(const std::string& t) const {
    const std::lock_guard lock(mutex_);
    return downs(t);
  }
  /// How many on_down_hook calls have returned (checked under the lock, in wait()).
  int hooks_returned() const { return hooks_returned_; }
  std::set<std::thread::id> threads() const {
    const std::lock_guard lock(mutex_);
    return threads_;
  }

  std::function<void(const DownEvent&)> on_down_hook;  ///< set before any target is added

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, int> healthy_;
  std::map<std::string, std::vector<Clock::time_point>> downs_;
  std::set<std::thread::id> threads_;
  std::uint64_t events_ = 0;
  int hooks_returned_ = 0;
};

TargetOptions target_of(const TestCluster& cluster, const std::string& name, int connections) {
  TargetOptions o;
  o.name = name;
  o.conninfo = cluster.conninfo(name);
  o.connections = connections;
  o.backoff_initial = 50ms;
  o.backoff_max = 200ms;
  return o;
}

bool all_healthy(const std::vector<ConnectionState>& states, std::size_t n) {
  return states.size() == n && std::all_of(states.begin(), states.end(), [](ConnectionState s) {
           return s == ConnectionState::healthy;
         });
}

/// Waits, from a test thread, until the target's connections are all healthy. It asks the
/// watchdog's thread only after an event (a state change or a health report) and sleeps on the
/// observer meanwhile: asking in a tight loop would post a call to the watchdog's thread after
/// every answer and take a core from the watchdog and the server that it waits for (on 2 cores,
/// beside a test that builds namespaces, two connections were once not healthy in 10 s).
bool wait_healthy(const WatchdogThread& w, const ThreadObserver& observer, const std::string& name,
                  std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::uint64_t seen = observer.events_now();
    if (all_healthy(w.connection_states(name), n)) return true;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds::zero()) return false;
    // An event after `seen` may be the one that made them healthy: ask again after it.
    (void)observer.wait([seen](const ThreadObserver& o) { return o.events() > seen; }, left);
  }
}

std::shared_ptr<spdlog::logger> quiet_logger() {
  static const auto text = std::make_shared<std::ostringstream>();
  static const auto logger = [] {
    auto l = WatchdogHarness::make_logger(text);
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return logger;
}

Nanos percentile(std::vector<Nanos> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

TEST_SUITE("thread") {
  TEST_CASE(
      "watchdog thread: starts running, calls work from other threads, callbacks run on "
      "its thread, destruction closes everything") {
    TestCluster cluster;
    ThreadObserver observer;
    auto w = std::make_unique<WatchdogThread>(
        WatchdogOptions{.observer = &observer, .logger = quiet_logger()});
    CHECK_FALSE(w->in_watchdog_thread());
    CHECK(w->target_names().empty());  // the loop runs: a call returns
    w->add_target(target_of(cluster, "threaded", 2));
    REQUIRE(wait_healthy(*w, observer, "threaded", 2, 10s));
    CHECK(w->snapshot() == std::map<std::string, std::vector<ConnectionState>>{
                               {"threaded", {ConnectionState::healthy, ConnectionState::healthy}}});
    CHECK(testing::metric_value(w->metrics(), "pgwatchdog_up", {{"target", "threaded"}}) == 1);
    cluster.terminate_backends("threaded");
    REQUIRE(observer.wait([](const ThreadObserver& o) { return o.downs("threaded") == 2; }, 10s));
    REQUIRE(observer.wait([](const ThreadObserver& o) { return o.healthy("threaded") == 4; }, 10s));
    const auto threads = observer.threads();
    CHECK(threads.size() == 1);
    CHECK(threads.count(std::this_thread::get_id()) == 0);
    CHECK_THROWS_AS(w->add_target(target_of(cluster, "threaded", 1)), InvalidTarget);
    w.reset();  // from this thread: stops the loop, closes the connections there, joins
    CHECK(backends_gone(cluster, "threaded"));
  }

  TEST_CASE("watchdog thread: destroying it on its own thread ends the process with a message") {
    // A thread cannot join itself: inside a callback the destructor refuses, loudly, rather than
    // deadlock or leave a thread behind. In a child, so that the end is observed.
    int output[2];
    REQUIRE(pipe(output) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      std::signal(SIGABRT, SIG_DFL);  // not doctest's crash handler
      dup2(output[1], 2);
      struct Destroyer : Observer {
        std::unique_ptr<WatchdogThread>* self = nullptr;
        void on_state_change(const StateChangeEvent&) override { self->reset(); }
      } destroyer;
      auto w = std::make_unique<WatchdogThread>(
          WatchdogOptions{.observer = &destroyer, .logger = quiet_logger()});
      destroyer.self = &w;
      TargetOptions o;
      o.name = "nowhere";
      o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";  // its first transition suffices
      w->add_target(o);
      pause();  // the abort comes from the watchdog's thread
      _exit(0);
    }
    close(output[1]);
    std::string said;
    char buffer[512];
    for (ssize_t got; (got = read(output[0], buffer, sizeof buffer)) > 0;)
      said.append(buffer, static_cast<std::size_t>(got));
    close(output[0]);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(said.find("pgwd::WatchdogThread destroyed on its own thread") != std::string::npos);
  }

  TEST_CASE("watchdog thread: bad options throw from the constructor and leave no thread") {
    CHECK_THROWS_WITH_AS(WatchdogThread(WatchdogOptions{.nameservers = {"not-an-address"}}),
                         doctest::Contains("nameservers: 'not-an-address'"), InvalidOptions);
  }

  TEST_CASE(
      "watchdog thread: calling it from inside a callback runs inline and does not "
      "deadlock") {
    TestCluster cluster;
    ThreadObserver observer;
    WatchdogThread* self = nullptr;
    std::atomic<int> removed{0};
    std::atomic<bool> inline_calls_ok{true};
    observer.on_down_hook = [&](const DownEvent& e) {
      // On the watchdog's thread (doctest's assertions are for the test's thread only): these
      // calls run inline; a wait for the watchdog's own thread would never return.
      if (!self->in_watchdog_thread() || self->snapshot().empty()) inline_calls_ok = false;
      if (self->remove_target(e.connection.target)) ++removed;
    };
    WatchdogThread w(WatchdogOptions{.observer = &observer, .logger = quiet_logger()});
    self = &w;
    w.add_target(target_of(cluster, "inline", 2));
    // A hang guard: the wait is on events (a CI run once failed at 10 s at load 9: two SCRAM
    // logins to a fresh cluster beside the suite).
    REQUIRE(wait_healthy(w, observer, "inline", 2, 30s));
    cluster.terminate_backends("inline");
    // The hook's return is the event to wait for: it removed the target inline, so once it has
    // returned no later call can find the target (the timeout only guards against a hang).
    REQUIRE(observer.wait([](const ThreadObserver& o) { return o.hooks_returned() >= 1; }, 30s));
    CHECK(w.target_names().empty());
    CHECK(removed == 1);
    CHECK(inline_calls_ok);
    CHECK(backends_gone(cluster, "inline"));
  }

  TEST_CASE(
      "watchdog thread: several threads add and remove targets while backends are "
      "killed") {
    TestCluster cluster({{"max_connections = 60"}});
    ThreadObserver observer;
    WatchdogThread w(WatchdogOptions{.observer = &observer, .logger = quiet_logger()});
    constexpr int kThreads = 4;
    constexpr int kRounds = 3;
    std::atomic<int> failures{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        for (int round = 0; round < kRounds; ++round) {
          const std::string name = "worker" + std::to_string(t) + "_" + std::to_string(round);
          w.add_target(target_of(cluster, name, 2));
          if (!wait_healthy(w, observer, name, 2, 30s)) ++failures;  // a hang guard
          cluster.terminate_backends(name);  // the watchdog reconnects them meanwhile
          if (!observer.wait([&](const ThreadObserver& o) { return o.downs(name) >= 1; }, 10s))
            ++failures;
          if (!w.remove_target(name)) ++failures;
        }
      });
    }
    for (auto& worker : workers) worker.join();
    CHECK(failures == 0);
    CHECK(w.target_names().empty());
    for (int t = 0; t < kThreads; ++t)
      for (int round = 0; round < kRounds; ++round)
        CHECK(backends_gone(cluster, "worker" + std::to_string(t) + "_" + std::to_string(round)));
  }

  TEST_CASE(
      "watchdog thread: terminate-to-on_down on its own thread against embedded, in one "
      "run") {
    // Not asserted against a bound (timing is for bench/); printed so the README can quote it.
    TestCluster cluster;
    ThreadObserver threaded_observer;
    WatchdogThread threaded(
        WatchdogOptions{.observer = &threaded_observer, .logger = quiet_logger()});
    threaded.add_target(target_of(cluster, "on_thread", 1));

    TestLoop loop;
    pgwd::testing::RecordingObserver embedded_observer;
    Watchdog embedded(loop.base(),
                      WatchdogOptions{.observer = &embedded_observer, .logger = quiet_logger()});
    embedded.add_target(target_of(cluster, "embedded", 1));

    // Both terminates come from a helper thread, so that neither loop is held up by the test
    // (the embedded one runs on this thread); each sample is from the moment the admin call
    // returned to on_down, and may be negative: the backend can be gone, and seen gone, before
    // the answer to pg_terminate_backend reaches the helper.
    const auto terminate_elsewhere = [&](const std::string& name, Clock::time_point& returned) {
      return std::thread([&cluster, name, &returned] {
        cluster.terminate_backends(name);
        returned = Clock::now();
      });
    };
    std::vector<Nanos> on_thread;
    std::vector<Nanos> on_host_loop;
    for (int sample = 0; sample < 20; ++sample) {
      REQUIRE(loop.run_until([&] { return all_healthy(embedded.connection_states("embedded"), 1); },
                             10s));
      const std::size_t downs = embedded_observer.down.size();
      Clock::time_point returned{};
      std::thread helper = terminate_elsewhere("embedded", returned);
      const bool seen = loop.run_until([&] { return embedded_observer.down.size() > downs; }, 10s);
      helper.join();
      REQUIRE(seen);
      on_host_loop.push_back(embedded_observer.down.back().at - returned);

      REQUIRE(wait_healthy(threaded, threaded_observer, "on_thread", 1, 10s));
      const std::size_t thread_downs = threaded_observer.downs_now("on_thread");
      helper = terminate_elsewhere("on_thread", returned);
      Clock::time_point down_at{};
      const bool seen_on_thread = threaded_observer.wait(
          [&](const ThreadObserver& o) {
            if (o.downs("on_thread") <= thread_downs) return false;
            down_at = o.last_down("on_thread");
            return true;
          },
          10s);
      helper.join();
      REQUIRE(seen_on_thread);
      on_thread.push_back(down_at - returned);
    }
    const auto us = [](Nanos d) {
      return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
    MESSAGE("pg_terminate_backend returned -> on_down, 20 samples each, interleaved: embedded p50 ",
            us(percentile(on_host_loop, 0.5)), " us, max ", us(percentile(on_host_loop, 1.0)),
            " us; WatchdogThread p50 ", us(percentile(on_thread, 0.5)), " us, max ",
            us(percentile(on_thread, 1.0)), " us");
    CHECK(on_thread.size() == 20);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
