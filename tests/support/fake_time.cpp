#include "support/fake_time.hpp"

#include <algorithm>

namespace pgwd::testing {

class FakeScheduler::FakeTimer final : public Timer {
 public:
  FakeTimer(FakeScheduler& owner, std::function<void()> on_expiry)
      : owner_(owner), on_expiry_(std::move(on_expiry)) {
    owner_.timers_.push_back(this);
  }
  ~FakeTimer() override { std::erase(owner_.timers_, this); }

  void arm(Nanos delay) override {
    due_ = owner_.now_ + std::max(delay, Nanos::zero());
    order_ = ++owner_.sequence_;
    armed_ = true;
  }
  void disarm() override { armed_ = false; }
  bool armed() const override { return armed_; }

  FakeScheduler& owner_;
  std::function<void()> on_expiry_;
  MonotonicTime due_{};
  std::uint64_t order_ = 0;
  bool armed_ = false;
};

TimerPtr FakeScheduler::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<FakeTimer>(*this, std::move(on_expiry));
}

void FakeScheduler::advance(Nanos by) {
  const MonotonicTime end = now_ + by;
  for (;;) {
    FakeTimer* next = nullptr;
    for (FakeTimer* t : timers_)
      if (t->armed_ && t->due_ <= end &&
          (!next || t->due_ < next->due_ || (t->due_ == next->due_ && t->order_ < next->order_)))
        next = t;
    if (!next) break;
    now_ = std::max(now_, next->due_);
    next->armed_ = false;
    next->on_expiry_();
  }
  now_ = end;
}

std::size_t FakeScheduler::armed_timers() const {
  return static_cast<std::size_t>(
      std::count_if(timers_.begin(), timers_.end(), [](auto* t) { return t->armed_; }));
}

}  // namespace pgwd::testing
