#include "health/recovery_scout.hpp"

namespace pgwd {

RecoveryScout::RecoveryScout(Loop& loop, Random& random, Nanos period, Nanos spread,
                             std::size_t connections, Hooks hooks)
    : random_(random),
      period_(period),
      spread_(spread),
      connections_(connections),
      hooks_(std::move(hooks)),
      timer_(loop.make_timer([this] { turn(); })) {}

bool RecoveryScout::waiting_may_fix(std::size_t index) const {
  return hooks_.state(index) == ConnectionState::backoff && !hooks_.lasting(index);
}

void RecoveryScout::lost() {
  if (period_ <= Nanos::zero() || timer_->armed()) return;
  timer_->arm(period_);
}

void RecoveryScout::back() {
  if (period_ <= Nanos::zero()) return;
  const auto span = static_cast<std::uint64_t>(spread_.count()) + 1;
  for (std::size_t i = 0; i < connections_; ++i)
    if (waiting_may_fix(i))
      hooks_.retry_within(i, Nanos(static_cast<Nanos::rep>(random_.next() % span)));
}

void RecoveryScout::stop() {
  timer_->disarm();
  scout_.reset();
}

void RecoveryScout::turn() {
  if (scout_) {
    const ConnectionState s = hooks_.state(*scout_);
    if (s == ConnectionState::waiting || s == ConnectionState::resolving ||
        s == ConnectionState::connecting) {
      timer_->arm(period_);  // the last scout is still on its way: one attempt at a time
      return;
    }
  }
  scout_.reset();
  for (std::size_t tried = 0; tried < connections_; ++tried) {
    const std::size_t index = next_;
    next_ = (next_ + 1) % connections_;
    if (!waiting_may_fix(index)) continue;
    scout_ = index;
    timer_->arm(period_);
    hooks_.retry_within(index, Nanos::zero());
    return;
  }
  // Nobody waits on a failure that may fix itself: scouting ends until the next loss.
}

}  // namespace pgwd
