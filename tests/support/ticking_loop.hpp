#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pgwd/loop.hpp"
#include "support/fake_loop.hpp"

namespace pgwd::testing {

/// A FakeLoop as a busy loop's clock looks: every reading of the clock is `tick` later than the
/// one before, so that work "costs" time without anything real taking long (remove_targets then
/// closes a few targets in the call and leaves the rest to later passes). The inner FakeLoop's
/// own clock still moves only in its advance(), which runs the timers. `after_timer`, if set,
/// runs after each timer's expiry: the test's look at the watchdog between loop passes.
class TickingLoop final : public Loop {
 public:
  TickingLoop(FakeLoop& inner, Nanos tick) : inner_(inner), tick_(tick) {}

  MonotonicTime now() const override { return inner_.now() + (tick_ * ++reads_); }
  TimerPtr make_timer(std::function<void()> on_expiry) override {
    return inner_.make_timer([this, on_expiry = std::move(on_expiry)] {
      on_expiry();
      if (after_timer) after_timer();
    });
  }
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override {
    return inner_.make_socket_watch(std::move(on_ready));
  }
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override {
    return inner_.make_resolver(nameservers);
  }
  void post(std::function<void()> task) override { inner_.post(std::move(task)); }
  bool in_loop_thread() const override { return true; }

  std::function<void()> after_timer;

 private:
  FakeLoop& inner_;
  Nanos tick_;
  mutable std::int64_t reads_ = 0;
};

}  // namespace pgwd::testing
