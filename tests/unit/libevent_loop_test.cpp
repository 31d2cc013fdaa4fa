// The loop conformance suite (loop_conformance.hpp) on pgwd::LibeventLoop, the adapter the
// library ships compiled.
#include <doctest/doctest.h>
#include <event2/event.h>

#include <memory>

#include "event/libevent/event_ptr.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "unit/loop_conformance.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

namespace {

/// An event_base and a LibeventLoop on it, run from the test thread.
struct LibeventHarness {
  struct BaseDeleter {
    void operator()(event_base* base) const noexcept { event_base_free(base); }
  };
  std::unique_ptr<event_base, BaseDeleter> base{event_base_new()};
  std::unique_ptr<pgwd::LibeventLoop> adapter = std::make_unique<pgwd::LibeventLoop>(base.get());

  pgwd::Loop& loop() { return *adapter; }

  /// One loop iteration at a time, waiting in epoll until something is ready; a one-shot timer
  /// at the deadline is the only event of the harness's own (no periodic tick).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const pgwd::EventPtr deadline(evtimer_new(
        base.get(), [](evutil_socket_t, short, void*) {}, nullptr));
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= end) return false;
      // Armed again for what is left before every wait: libevent's clock (CLOCK_MONOTONIC_COARSE,
      // a tick of a few ms) may fire a single deadline a little before `end` by this clock, and
      // an idle loop would then wait with nothing pending, for ever (a CI run hung so, 60 s).
      const timeval tv = pgwd::to_timeval(std::chrono::ceil<std::chrono::milliseconds>(end - now) +
                                          std::chrono::milliseconds(1));
      evtimer_add(deadline.get(), &tv);
      event_base_loop(base.get(), EVLOOP_ONCE);
    }
    return true;
  }

  void destroy_loop() { adapter.reset(); }
};

}  // namespace

PGWD_LOOP_CONFORMANCE_TESTS(LibeventHarness, "libevent")

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
