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

bool RecoveryScout::on_its_way(std::size_t index) const {
  const ConnectionState s = hooks_.state(index);
  return (s == ConnectionState::resolving || s == ConnectionState::connecting) &&
         !hooks_.lasting(index);
}

bool RecoveryScout::hedge_one(std::size_t first) {
  for (std::size_t tried = 0; tried < connections_; ++tried) {
    const std::size_t index = (first + tried) % connections_;
    if (!on_its_way(index)) continue;
    scout_ = index;
    hooks_.hedge(index, period_ / 2);
    return true;
  }
  return false;
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
    if (hooks_.state(*scout_) == ConnectionState::waiting) {
      timer_->arm(period_);  // queued for a connect slot: one attempt at a time
      return;
    }
    if (on_its_way(*scout_)) {
      hooks_.hedge(*scout_, period_ / 2);  // a fresh attempt beside the one still on its way
      timer_->arm(period_);
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
  // Nobody waits: an attempt of a connection's own (its backoff ran out) may be on its way.
  if (hedge_one(next_)) {
    timer_->arm(period_);
    return;
  }
  // Nobody waits on a failure that may fix itself and nothing is on its way: scouting ends
  // until the next loss.
}

}  // namespace pgwd
