#include "support/test_loop.hpp"

#include <event2/event.h>

#include <stdexcept>

#include "event/libevent/event_ptr.hpp"

namespace pgwd::testing {

void TestLoop::BaseDeleter::operator()(event_base* base) const noexcept {
  event_base_free(base);
}

TestLoop::TestLoop() : base_(event_base_new()) {
  if (!base_) throw std::runtime_error("event_base_new failed");
}

TestLoop::~TestLoop() = default;

bool TestLoop::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  // A persistent tick makes sure each EVLOOP_ONCE iteration returns within 5 ms even when
  // nothing else happens, so the deadline and the condition are checked often.
  const EventPtr tick(event_new(
      base_.get(), -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr));
  const timeval every = to_timeval(std::chrono::milliseconds(5));
  event_add(tick.get(), &every);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    event_base_loop(base_.get(), EVLOOP_ONCE);
  }
  return true;
}

void TestLoop::run_for(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  run_until([&] { return std::chrono::steady_clock::now() >= deadline; },
            duration + std::chrono::seconds(1));
}

}  // namespace pgwd::testing
