#pragma once

// The promises of pgwd/loop.hpp, checked against a real adapter. Every case is a function
// template over a Harness; PGWD_LOOP_CONFORMANCE_TESTS(Harness, "name") instantiates them all as
// doctest cases named "<name> loop conformance: ...". A Harness is default-constructible and
// provides:
//
//   pgwd::Loop& loop();                    the adapter under test
//   bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
//       runs the loop until done() holds (checked after every callback the loop runs) or the
//       timeout passed; true if done() held. It must wait in the loop's own wait, with no
//       periodic tick of its own: the wake-up test measures how fast a post wakes the adapter.
//   void destroy_loop();                   destroys the adapter, leaving the loop it wraps
//       (io_context, event_base) alive and runnable with run_until.
//
// Time is real (these are the adapter's real timers and sockets): every wait is on a condition
// with a deadline, and "nothing more happens" checks keep the loop running for a short while
// after the condition. Sockets are non-blocking AF_UNIX socket pairs.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pgwd/loop.hpp"
#include "support/sched_stat.hpp"

namespace pgwd::testing::conformance {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// Long enough for a callback that should not come to have come (the loop runs meanwhile).
constexpr std::chrono::milliseconds kQuietPeriod = 60ms;
/// For what should take microseconds: generous for a loaded machine under sanitizers.
constexpr std::chrono::milliseconds kPatience = 5000ms;

template <typename Harness>
void run_for(Harness& h, std::chrono::milliseconds d) {
  h.run_until([] { return false; }, d);
}

/// An fd the test owns (never the adapter), closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

/// A connected pair: `watched` is what the adapter watches, `peer` what the test writes to or
/// closes.
struct SocketPair {
  Fd watched;
  Fd peer;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::runtime_error("socketpair failed");
    watched = Fd(fds[0]);
    peer = Fd(fds[1]);
  }
};

inline void send_bytes(const Fd& fd, const std::string& bytes) {
  REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

/// One byte, or nullopt if none is waiting (EAGAIN) or the peer closed.
inline std::optional<char> read_byte(const Fd& fd) {
  char c = 0;
  if (::read(fd.get(), &c, 1) == 1) return c;
  return std::nullopt;
}

inline bool is_open_fd(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

inline long long micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// ---- timers ---------------------------------------------------------------------------------

template <typename H>
void timer_fires_once_and_never_early() {
  H h;
  std::vector<std::pair<Nanos, Clock::time_point>> fired;  // delay, when
  std::vector<std::pair<Nanos, Clock::time_point>> armed_at;
  std::vector<TimerPtr> timers;
  for (const Nanos delay : {Nanos(1ms), Nanos(7ms), Nanos(20ms), Nanos(35ms)}) {
    timers.push_back(h.loop().make_timer([&fired, delay] {
      fired.push_back({delay, Clock::now()});
    }));
    armed_at.push_back({delay, Clock::now()});
    timers.back()->arm(delay);
    CHECK(timers.back()->armed());
  }
  const MonotonicTime loop_before = h.loop().now();
  REQUIRE(h.run_until([&] { return fired.size() == timers.size(); }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(fired.size() == timers.size());  // once each
  for (const auto& [delay, at] : fired) {
    const auto it = std::find_if(armed_at.begin(), armed_at.end(),
                                 [d = delay](const auto& a) { return a.first == d; });
    REQUIRE(it != armed_at.end());
    CHECK_MESSAGE(at - it->second >= delay, "a ", micros(delay), " us timer fired after ",
                  micros(at - it->second), " us");
  }
  for (const auto& t : timers) CHECK_FALSE(t->armed());
  // The loop's clock is the steady clock the timers count on.
  const MonotonicTime loop_after = h.loop().now();
  const Clock::time_point steady_after = Clock::now();
  CHECK(loop_after - loop_before >= 35ms);
  CHECK(loop_after <= steady_after);
}

template <typename H>
void timer_with_zero_delay_never_fires_inside_arm() {
  H h;
  int fired = 0;
  TimerPtr timer = h.loop().make_timer([&] { ++fired; });
  timer->arm(Nanos::zero());
  CHECK(fired == 0);
  CHECK(timer->armed());
  REQUIRE(h.run_until([&] { return fired == 1; }, kPatience));
  CHECK_FALSE(timer->armed());
}

template <typename H>
void timer_rearm_replaces_and_disarm_cancels() {
  H h;
  int replaced = 0;
  int disarmed = 0;
  Clock::time_point fired_at{};
  TimerPtr a = h.loop().make_timer([&] {
    ++replaced;
    fired_at = Clock::now();
  });
  TimerPtr b = h.loop().make_timer([&] { ++disarmed; });
  a->arm(10s);
  const auto rearmed_at = Clock::now();
  a->arm(15ms);  // replaces the 10 s expiry
  b->arm(5ms);
  b->disarm();
  CHECK_FALSE(b->armed());
  b->disarm();  // twice: harmless
  REQUIRE(h.run_until([&] { return replaced == 1; }, kPatience));
  CHECK(fired_at - rearmed_at >= 15ms);
  run_for(h, kQuietPeriod);
  CHECK(replaced == 1);
  CHECK(disarmed == 0);
}

template <typename H>
void timer_rearmed_inside_its_own_callback() {
  H h;
  std::vector<Clock::duration> waited;
  Clock::time_point armed_at{};
  TimerPtr timer;
  timer = h.loop().make_timer([&] {
    waited.push_back(Clock::now() - armed_at);
    CHECK_FALSE(timer->armed());  // one-shot: not armed while its callback runs
    if (waited.size() < 3) {
      armed_at = Clock::now();
      timer->arm(5ms);
      CHECK(timer->armed());
    }
  });
  armed_at = Clock::now();
  timer->arm(5ms);
  REQUIRE(h.run_until([&] { return waited.size() == 3; }, kPatience));
  run_for(h, kQuietPeriod);
  REQUIRE(waited.size() == 3);
  for (const auto& w : waited) CHECK(w >= 5ms);
}

template <typename H>
void timer_disarmed_or_destroyed_inside_its_own_callback() {
  H h;
  int fired = 0;
  TimerPtr disarming;
  disarming = h.loop().make_timer([&] {
    ++fired;
    disarming->arm(1ms);
    disarming->disarm();  // re-armed and disarmed from inside: nothing more
  });
  TimerPtr destroying;
  destroying = h.loop().make_timer([&] {
    ++fired;
    destroying->arm(1ms);
    destroying.reset();  // destroyed from inside its own callback, while armed
  });
  disarming->arm(1ms);
  destroying->arm(1ms);
  REQUIRE(h.run_until([&] { return fired == 2; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(fired == 2);
  CHECK(destroying == nullptr);
}

template <typename H>
void timer_cancelled_after_its_expiry_was_due_never_fires() {
  // Three timers due at once: when the first runs, the loop has seen the others expire too (asio
  // has their handlers queued already, with success). Whichever runs first disarms one sibling
  // and destroys the other: neither may run.
  H h;
  std::vector<int> ran;
  std::vector<TimerPtr> timers(3);
  for (int i = 0; i < 3; ++i)
    timers[i] = h.loop().make_timer([&, i] {
      ran.push_back(i);
      bool disarm_next = true;
      for (int j = 0; j < 3; ++j) {
        if (j == i || !timers[j]) continue;
        if (disarm_next) {
          timers[j]->disarm();
          disarm_next = false;
        } else {
          timers[j].reset();
        }
      }
    });
  for (auto& t : timers) t->arm(Nanos::zero());
  REQUIRE(h.run_until([&] { return !ran.empty(); }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(ran.size() == 1);
}

// ---- socket watches -------------------------------------------------------------------------

template <typename H>
void watch_is_level_triggered_for_reading() {
  // Two bytes waiting, one read per callback: the callback must come twice (an edge-triggered
  // watch would strand the second byte), then stop coming.
  H h;
  SocketPair pair;
  std::string got;
  int calls = 0;
  SocketWatchPtr watch = h.loop().make_socket_watch([&](Readiness r) {
    ++calls;
    CHECK(r.readable);
    if (const auto c = read_byte(pair.watched)) got += *c;
  });
  send_bytes(pair.peer, "ab");
  watch->watch(pair.watched.get(), Interest::read);
  CHECK(calls == 0);  // never inside watch()
  REQUIRE(h.run_until([&] { return calls >= 2; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(calls == 2);
  CHECK(got == "ab");
  // New data later: reported again.
  send_bytes(pair.peer, "c");
  REQUIRE(h.run_until([&] { return got == "abc"; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(calls == 3);
}

template <typename H>
void watch_is_level_triggered_for_writing() {
  // A writable socket stays writable: reported again and again while the interest stands.
  H h;
  SocketPair pair;
  int calls = 0;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness r) {
    ++calls;
    CHECK(r.writable);
    CHECK_FALSE(r.readable);  // nothing to read, and read was not asked for
    if (calls == 3) watch->stop();
  });
  watch->watch(pair.watched.get(), Interest::write);
  CHECK(calls == 0);
  REQUIRE(h.run_until([&] { return calls == 3; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(calls == 3);
}

template <typename H>
void watch_reports_read_and_write_together() {
  H h;
  SocketPair pair;
  std::optional<Readiness> seen;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness r) {
    if (r.readable && r.writable) {
      seen = r;
      watch->stop();
    }
  });
  send_bytes(pair.peer, "x");
  watch->watch(pair.watched.get(), Interest::read_write);
  REQUIRE(h.run_until([&] { return seen.has_value(); }, kPatience));
}

template <typename H>
void watch_repointed_inside_its_callback() {
  // libpq may switch sockets between PQconnectPoll steps: the callback re-points the watch.
  H h;
  SocketPair first;
  SocketPair second;
  std::string got;
  int calls = 0;
  const Fd* current = &first.watched;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness r) {
    ++calls;
    REQUIRE(r.readable);
    if (const auto c = read_byte(*current)) got += *c;
    if (current == &first.watched) {
      current = &second.watched;
      watch->watch(second.watched.get(), Interest::read);
    }
  });
  send_bytes(first.peer, "12");  // the "2" stays unread: the old socket is no longer watched
  send_bytes(second.peer, "x");
  watch->watch(first.watched.get(), Interest::read);
  REQUIRE(h.run_until([&] { return got.size() == 2; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(got == "1x");
  CHECK(calls == 2);
  send_bytes(first.peer, "3");
  run_for(h, kQuietPeriod);
  CHECK(calls == 2);
  send_bytes(second.peer, "y");
  REQUIRE(h.run_until([&] { return got == "1xy"; }, kPatience));
}

template <typename H>
void watch_on_a_recycled_fd_number_gets_the_new_sockets_events() {
  // libpq closed its socket (the watch was not stopped first) and a new one got the same number:
  // the stale registration must not swallow the new socket's events.
  H h;
  SocketPair old_pair;
  const int number = old_pair.watched.get();
  int calls = 0;
  SocketWatchPtr watch = h.loop().make_socket_watch([&](Readiness) { ++calls; });
  watch->watch(number, Interest::read);
  run_for(h, 5ms);
  CHECK(calls == 0);
  old_pair.watched.reset();  // closed under the watch, like PQfinish after a failed read
  SocketPair fresh;          // most likely at the lowest free number: the old one
  Fd recycled;
  if (fresh.watched.get() == number) {
    recycled = std::move(fresh.watched);
  } else {
    REQUIRE(::dup2(fresh.watched.get(), number) == number);
    recycled = Fd(number);
    fresh.watched.reset();
  }
  watch->watch(number, Interest::read);
  send_bytes(fresh.peer, "z");
  REQUIRE(h.run_until([&] { return calls >= 1; }, kPatience));
  CHECK(read_byte(recycled) == 'z');
  watch->stop();
}

template <typename H>
void watch_stopped_inside_its_callback() {
  H h;
  SocketPair pair;
  int calls = 0;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness) {
    ++calls;
    watch->stop();  // data still waiting: no further report
    watch->stop();  // twice: harmless
  });
  send_bytes(pair.peer, "ab");
  watch->watch(pair.watched.get(), Interest::read);
  REQUIRE(h.run_until([&] { return calls == 1; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(calls == 1);
  // Watched again later: the data still waiting is reported.
  watch->watch(pair.watched.get(), Interest::read);
  REQUIRE(h.run_until([&] { return calls == 2; }, kPatience));
}

template <typename H>
void watch_destroyed_inside_its_callback() {
  H h;
  SocketPair pair;
  int calls = 0;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness) {
    ++calls;
    watch.reset();
  });
  send_bytes(pair.peer, "ab");
  watch->watch(pair.watched.get(), Interest::read_write);
  REQUIRE(h.run_until([&] { return calls == 1; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(calls == 1);
  CHECK(watch == nullptr);
}

template <typename H>
void watch_reports_a_closed_peer_as_readable() {
  H h;
  SocketPair pair;
  std::optional<Readiness> seen;
  std::optional<ssize_t> read_result;
  SocketWatchPtr watch;
  watch = h.loop().make_socket_watch([&](Readiness r) {
    seen = r;
    char c = 0;
    read_result = ::read(pair.watched.get(), &c, 1);
    watch->stop();
  });
  watch->watch(pair.watched.get(), Interest::read);
  run_for(h, 5ms);
  CHECK_FALSE(seen.has_value());
  pair.peer.reset();
  REQUIRE(h.run_until([&] { return seen.has_value(); }, kPatience));
  CHECK(seen->readable);
  CHECK(read_result == 0);  // EOF: the reader finds out
}

template <typename H>
void watch_stop_is_safe_anytime_and_never_closes_the_socket() {
  H h;
  SocketPair pair;
  int calls = 0;
  {
    SocketWatchPtr watch = h.loop().make_socket_watch([&](Readiness) { ++calls; });
    watch->stop();  // not watching yet
    watch->watch(pair.watched.get(), Interest::read);
    watch->stop();
    send_bytes(pair.peer, "q");
    run_for(h, kQuietPeriod);
    CHECK(calls == 0);  // stopped: the data is not reported
    watch->watch(pair.watched.get(), Interest::read);
    REQUIRE(h.run_until([&] { return calls == 1; }, kPatience));
  }  // destroyed while watching
  run_for(h, kQuietPeriod);
  CHECK(calls == 1);
  // The socket is still open and works: the adapter never closes it (libpq owns it).
  CHECK(is_open_fd(pair.watched.get()));
  CHECK(read_byte(pair.watched) == 'q');
  send_bytes(pair.watched, "r");
  CHECK(read_byte(pair.peer) == 'r');
  // Stop after the socket was closed under the watch.
  SocketWatchPtr late = h.loop().make_socket_watch([&](Readiness) {});
  SocketPair other;
  late->watch(other.watched.get(), Interest::read);
  other.watched.reset();
  late->stop();
  late.reset();
  run_for(h, 5ms);
}

template <typename H>
void activate_read_reports_readable_from_the_loop() {
  // OpenSSL may hold decrypted bytes the socket no longer shows: the watchdog forces a report.
  H h;
  SocketPair pair;
  std::vector<Readiness> seen;
  SocketWatchPtr watch = h.loop().make_socket_watch([&](Readiness r) { seen.push_back(r); });
  watch->watch(pair.watched.get(), Interest::read);
  run_for(h, 5ms);
  REQUIRE(seen.empty());  // nothing to read
  watch->activate_read();
  CHECK(seen.empty());  // never inside activate_read()
  REQUIRE(h.run_until([&] { return !seen.empty(); }, kPatience));
  CHECK(seen[0].readable);
  run_for(h, kQuietPeriod);
  CHECK(seen.size() == 1);  // once: the kernel still has nothing
  watch->stop();
  watch->activate_read();  // not watching: nothing
  run_for(h, kQuietPeriod);
  CHECK(seen.size() == 1);
}

// ---- post and threads -----------------------------------------------------------------------

template <typename H>
void post_runs_later_in_order() {
  H h;
  std::vector<int> order;
  h.loop().post([&] {
    order.push_back(1);
    h.loop().post([&] { order.push_back(4); });  // posted from a task: runs after 2 and 3
    CHECK(order == std::vector<int>{1});
  });
  h.loop().post([&] { order.push_back(2); });
  h.loop().post([&] { order.push_back(3); });
  CHECK(order.empty());  // never inside post()
  REQUIRE(h.run_until([&] { return order.size() == 4; }, kPatience));
  CHECK(order == std::vector<int>{1, 2, 3, 4});
}

template <typename H>
void post_keeps_order_from_another_thread() {
  H h;
  constexpr int kTasks = 200;
  std::vector<int> order;
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) h.loop().post([&order, i] { order.push_back(i); });
  });
  const bool all = h.run_until([&] { return order.size() == kTasks; }, kPatience);
  poster.join();
  REQUIRE(all);
  for (int i = 0; i < kTasks; ++i) CHECK(order[i] == i);
}

/// The kernel's scheduling state of a thread of this process ('S' = asleep in a wait).
inline char thread_state(long tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
}

/// How long thread `tid` of this process has been runnable but waiting for a CPU, in all
/// (support/sched_stat.hpp); zero where the kernel does not say. Read on the thread itself, it
/// includes the wait that ended when it last got a CPU.
inline Clock::duration cpu_wait_of(long tid) {
  const auto stat = pgwd::testing::thread_schedstat(::getpid(), static_cast<int>(tid));
  return stat ? std::chrono::duration_cast<Clock::duration>(stat->waiting)
              : Clock::duration::zero();
}

template <typename H>
void post_from_another_thread_wakes_a_sleeping_loop_at_once() {
  // The loop sleeps in its wait with nothing armed but a far-off timer. Another thread waits
  // (on the loop thread's kernel state, not on a clock) until it is asleep, then posts: the task
  // must run within milliseconds, not at the next timer or tick. What the bound is about is the
  // wake-up; the time the two threads were runnable but waiting for a CPU meanwhile is the
  // machine's (a loaded CI runner: 23 ms median once, raw) and is taken out, measured.
  H h;
  const long loop_tid = ::syscall(SYS_gettid);
  TimerPtr far_off = h.loop().make_timer([] {});
  far_off->arm(60s);
  std::vector<Clock::duration> latencies;
  std::vector<Clock::duration> own_latencies;
  for (int round = 0; round < 5; ++round) {
    std::atomic<bool> asleep_seen{false};
    bool ran = false;
    Clock::time_point posted_at{};
    Clock::time_point ran_at{};
    Clock::duration loop_wait_before{};
    Clock::duration loop_wait_at_run{};
    Clock::duration poster_waited{};
    std::thread poster([&] {
      const long poster_tid = ::syscall(SYS_gettid);
      const auto give_up = Clock::now() + kPatience;
      while (thread_state(loop_tid) != 'S' && Clock::now() < give_up) std::this_thread::yield();
      asleep_seen = thread_state(loop_tid) == 'S';
      CHECK_FALSE(h.loop().in_loop_thread());
      loop_wait_before = cpu_wait_of(loop_tid);
      const Clock::duration poster_wait_before = cpu_wait_of(poster_tid);
      posted_at = Clock::now();
      h.loop().post([&] {
        ran_at = Clock::now();
        loop_wait_at_run = cpu_wait_of(loop_tid);
        ran = true;
        CHECK(h.loop().in_loop_thread());
      });
      poster_waited = cpu_wait_of(poster_tid) - poster_wait_before;
    });
    const bool done = h.run_until([&] { return ran; }, 10s);
    poster.join();
    REQUIRE(done);
    CHECK(asleep_seen);
    const Clock::duration latency = ran_at - posted_at;
    const Clock::duration machine = (loop_wait_at_run - loop_wait_before) + poster_waited;
    latencies.push_back(latency);
    own_latencies.push_back(std::max(Clock::duration::zero(), latency - machine));
  }
  std::sort(latencies.begin(), latencies.end());
  std::sort(own_latencies.begin(), own_latencies.end());
  MESSAGE("post from another thread to a sleeping loop, task run after (us): median ",
          micros(latencies[2]), ", max ", micros(latencies.back()),
          "; less the two threads' wait for a CPU: median ", micros(own_latencies[2]), ", max ",
          micros(own_latencies.back()));
  CHECK(own_latencies[2] < 20ms);
  CHECK(own_latencies.back() < 250ms);
}

template <typename H>
void in_loop_thread_is_true_only_on_the_loop_thread() {
  H h;
  std::optional<bool> in_timer;
  std::optional<bool> elsewhere;
  TimerPtr timer = h.loop().make_timer([&] { in_timer = h.loop().in_loop_thread(); });
  timer->arm(Nanos::zero());
  std::thread other([&] { elsewhere = h.loop().in_loop_thread(); });
  other.join();
  REQUIRE(h.run_until([&] { return in_timer.has_value(); }, kPatience));
  CHECK(*in_timer);
  CHECK_FALSE(*elsewhere);
}

template <typename H>
void tasks_queued_when_the_adapter_goes_never_run() {
  H h;
  bool ran = false;
  auto witness = std::make_shared<int>(0);
  std::weak_ptr<int> watcher = witness;
  h.loop().post([&ran, witness = std::move(witness)] { ran = true; });
  h.destroy_loop();
  CHECK(watcher.expired());  // destroyed with the adapter
  run_for(h, kQuietPeriod);  // the loop itself lives on
  CHECK_FALSE(ran);
}

// ---- name resolution ------------------------------------------------------------------------

template <typename H>
void resolver_finds_localhost_from_the_loop() {
  H h;
  auto resolver = h.loop().make_resolver({});
  std::optional<Resolution> result;
  auto lookup = resolver->resolve("localhost", [&](Resolution r) { result = std::move(r); });
  CHECK_FALSE(result.has_value());  // never inside resolve()
  REQUIRE(h.run_until([&] { return result.has_value(); }, kPatience));
  CHECK(result->error.empty());
  CHECK(std::find(result->addresses.begin(), result->addresses.end(), "127.0.0.1") !=
        result->addresses.end());
  const std::set<std::string> unique(result->addresses.begin(), result->addresses.end());
  CHECK(unique.size() == result->addresses.size());
  lookup->cancel();  // after completion: harmless
}

template <typename H>
void resolver_passes_numeric_addresses_through() {
  H h;
  auto resolver = h.loop().make_resolver({});
  std::optional<Resolution> v4;
  std::optional<Resolution> v6;
  auto a = resolver->resolve("127.0.0.1", [&](Resolution r) { v4 = std::move(r); });
  auto b = resolver->resolve("::1", [&](Resolution r) { v6 = std::move(r); });
  REQUIRE(h.run_until([&] { return v4 && v6; }, kPatience));
  CHECK(v4->error.empty());
  CHECK(v4->addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(v6->error.empty());
  CHECK(v6->addresses == std::vector<std::string>{"::1"});
}

template <typename H>
void resolver_reports_a_name_that_cannot_exist() {
  H h;
  auto resolver = h.loop().make_resolver({});
  std::optional<Resolution> result;
  // .invalid never resolves (RFC 6761); the system's DNS may take its time to say so.
  auto lookup = resolver->resolve("no-such-host.pgwatchdog.invalid",
                                  [&](Resolution r) { result = std::move(r); });
  REQUIRE(h.run_until([&] { return result.has_value(); }, 30s));
  CHECK(result->addresses.empty());
  CHECK_FALSE(result->error.empty());
  MESSAGE("error for a name that cannot exist: ", result->error);
}

template <typename H>
void resolver_cancel_means_the_callback_never_runs() {
  H h;
  auto resolver = h.loop().make_resolver({});
  int cancelled_ran = 0;
  int destroyed_ran = 0;
  int cancelled_inside = 0;
  std::optional<Resolution> sentinel;
  auto cancelled = resolver->resolve("localhost", [&](Resolution) { ++cancelled_ran; });
  auto destroyed = resolver->resolve("127.0.0.1", [&](Resolution) { ++destroyed_ran; });
  std::unique_ptr<Lookup> self_cancelling;
  self_cancelling = resolver->resolve("localhost", [&](Resolution) {
    ++cancelled_inside;
    self_cancelling->cancel();  // from inside its own callback: harmless
    self_cancelling.reset();    // and destroyed there
  });
  cancelled->cancel();
  cancelled->cancel();  // twice: harmless
  destroyed.reset();
  // Asked after the cancelled ones: once it is answered, theirs would have been too.
  auto last = resolver->resolve("localhost", [&](Resolution r) { sentinel = std::move(r); });
  REQUIRE(h.run_until([&] { return sentinel.has_value() && cancelled_inside == 1; }, kPatience));
  run_for(h, kQuietPeriod);
  CHECK(cancelled_ran == 0);
  CHECK(destroyed_ran == 0);
  CHECK(cancelled_inside == 1);
}

template <typename H>
void resolver_rejects_a_bad_nameserver_entry() {
  H h;
  CHECK_THROWS_AS(h.loop().make_resolver({"not-an-ip"}), std::invalid_argument);
}

}  // namespace pgwd::testing::conformance

#define PGWD_LOOP_CONFORMANCE_CASE(Harness, name, what, function) \
  TEST_CASE(name " loop conformance: " what) {                    \
    ::pgwd::testing::conformance::function<Harness>();            \
  }
/// A case with threads: also in doctest's "thread" suite (ctest label), which CI runs under TSan.
#define PGWD_LOOP_CONFORMANCE_THREAD_CASE(Harness, name, what, function)      \
  TEST_CASE(name " loop conformance: " what* doctest::test_suite("thread")) { \
    ::pgwd::testing::conformance::function<Harness>();                        \
  }

/// Instantiates every conformance case for `Harness`; `name` (a string literal) names the adapter.
#define PGWD_LOOP_CONFORMANCE_TESTS(Harness, name)                                                \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "timers fire once and never early",                   \
                             timer_fires_once_and_never_early)                                    \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a zero-delay timer never fires inside arm()",        \
                             timer_with_zero_delay_never_fires_inside_arm)                        \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "re-arming replaces the expiry - disarm cancels it",  \
                             timer_rearm_replaces_and_disarm_cancels)                             \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a timer re-armed inside its own callback",           \
                             timer_rearmed_inside_its_own_callback)                               \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name,                                                       \
                             "a timer disarmed or destroyed inside its own callback",             \
                             timer_disarmed_or_destroyed_inside_its_own_callback)                 \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name,                                                       \
                             "a timer cancelled after its expiry was due never fires",            \
                             timer_cancelled_after_its_expiry_was_due_never_fires)                \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "read readiness is level-triggered",                  \
                             watch_is_level_triggered_for_reading)                                \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "write readiness is level-triggered",                 \
                             watch_is_level_triggered_for_writing)                                \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "read and write interest together",                   \
                             watch_reports_read_and_write_together)                               \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a watch re-pointed inside its callback",             \
                             watch_repointed_inside_its_callback)                                 \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name,                                                       \
                             "a watch on a recycled fd number gets the new socket events",        \
                             watch_on_a_recycled_fd_number_gets_the_new_sockets_events)           \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a watch stopped inside its callback",                \
                             watch_stopped_inside_its_callback)                                   \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a watch destroyed inside its callback",              \
                             watch_destroyed_inside_its_callback)                                 \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a closed peer is reported readable",                 \
                             watch_reports_a_closed_peer_as_readable)                             \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name,                                                       \
                             "stop is safe at any time and the socket is never closed",           \
                             watch_stop_is_safe_anytime_and_never_closes_the_socket)              \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "activate_read reports readable from the loop",       \
                             activate_read_reports_readable_from_the_loop)                        \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "posted tasks run later and in order",                \
                             post_runs_later_in_order)                                            \
  PGWD_LOOP_CONFORMANCE_THREAD_CASE(Harness, name,                                                \
                                    "tasks posted from another thread keep their order",          \
                                    post_keeps_order_from_another_thread)                         \
  PGWD_LOOP_CONFORMANCE_THREAD_CASE(Harness, name,                                                \
                                    "a post from another thread wakes a sleeping loop at once",   \
                                    post_from_another_thread_wakes_a_sleeping_loop_at_once)       \
  PGWD_LOOP_CONFORMANCE_THREAD_CASE(Harness, name,                                                \
                                    "in_loop_thread is true only on the loop thread",             \
                                    in_loop_thread_is_true_only_on_the_loop_thread)               \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "tasks still queued when the adapter goes never run", \
                             tasks_queued_when_the_adapter_goes_never_run)                        \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "localhost resolves from the loop",                   \
                             resolver_finds_localhost_from_the_loop)                              \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "numeric addresses resolve to themselves",            \
                             resolver_passes_numeric_addresses_through)                           \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a name that cannot exist fails with an error",       \
                             resolver_reports_a_name_that_cannot_exist)                           \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a cancelled lookup never calls back",                \
                             resolver_cancel_means_the_callback_never_runs)                       \
  PGWD_LOOP_CONFORMANCE_CASE(Harness, name, "a bad nameserver entry is rejected",                 \
                             resolver_rejects_a_bad_nameserver_entry)
