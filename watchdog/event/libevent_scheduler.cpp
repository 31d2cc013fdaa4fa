#include "event/libevent_scheduler.hpp"

#include "event/event_ptr.hpp"

namespace pgwd {
namespace {

class LibeventTimer final : public Timer {
 public:
  LibeventTimer(event_base* base, std::function<void()> on_expiry)
      : on_expiry_(std::move(on_expiry)), event_(evtimer_new(base, &LibeventTimer::expired, this)) {
    if (!event_) throw std::bad_alloc();
  }
  LibeventTimer(const LibeventTimer&) = delete;
  LibeventTimer& operator=(const LibeventTimer&) = delete;

  void arm(Nanos delay) override {
    due_ = std::chrono::steady_clock::now() + delay;
    schedule(delay);
  }
  void disarm() override { evtimer_del(event_.get()); }
  bool armed() const override { return evtimer_pending(event_.get(), nullptr) != 0; }

 private:
  void schedule(Nanos delay) {
    // libevent counts a timeout from the time it cached when this loop iteration began; work done
    // since (a SCRAM exchange takes milliseconds) would make the timer fire early. Count from now.
    event_base_update_cache_time(event_get_base(event_.get()));
    const timeval tv = to_timeval(delay);
    evtimer_add(event_.get(), &tv);
  }

  static void expired(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<LibeventTimer*>(arg);
    // Unless the host's base was made with EVENT_BASE_FLAG_PRECISE_TIMER, libevent reads
    // CLOCK_MONOTONIC_COARSE and may fire a tick (~4 ms) early. A deadline must not be early.
    const Nanos left = self->due_ - std::chrono::steady_clock::now();
    if (left > Nanos::zero()) {
      self->schedule(left);
      return;
    }
    self->on_expiry_();
  }

  MonotonicTime due_{};
  std::function<void()> on_expiry_;
  EventPtr event_;
};

}  // namespace

TimerPtr LibeventScheduler::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<LibeventTimer>(base_, std::move(on_expiry));
}

}  // namespace pgwd
