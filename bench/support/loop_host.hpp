#pragma once

/// \file
/// The embedded case as a host has it: the host's own thread runs a libevent loop, and a
/// Watchdog lives on it (Watchdog(Loop&) over LibeventLoop, with a TimingLoop in between that
/// measures the callbacks' CPU time). The benchmark's driver thread hands work to the loop with
/// call(), which waits for it.

#include <sys/types.h>

#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "pgwd/watchdog.hpp"
#include "support/timing_loop.hpp"

struct event_base;

namespace pgwd::bench {

class LoopHost {
 public:
  /// Starts the thread and makes the Watchdog on it; returns once the loop runs.
  explicit LoopHost(WatchdogOptions options);
  /// Destroys the Watchdog on the loop thread (closing every connection), stops the loop, joins.
  ~LoopHost();
  LoopHost(const LoopHost&) = delete;
  LoopHost& operator=(const LoopHost&) = delete;

  /// Runs `work` on the loop thread and waits for it; an exception it throws is rethrown here.
  void call(const std::function<void(Watchdog&)>& work);
  /// Destroys the Watchdog on the loop thread now (timed by the caller: shutdown cost).
  void destroy_watchdog();

  TimingLoop& timing() { return *timing_; }
  /// The loop thread's kernel id (for /proc/self/task/TID).
  pid_t loop_tid() const noexcept { return tid_; }

 private:
  void run(WatchdogOptions options, std::promise<void>& started);

  struct State;
  std::unique_ptr<State> state_;
  TimingLoop* timing_ = nullptr;
  pid_t tid_ = 0;
  std::thread thread_;
};

}  // namespace pgwd::bench
