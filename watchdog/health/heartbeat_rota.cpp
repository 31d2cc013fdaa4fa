#include "health/heartbeat_rota.hpp"

namespace pgwd {

HeartbeatRota::HeartbeatRota(Loop& loop, Random& random, Nanos period, std::size_t connections,
                             Beat beat)
    : random_(random),
      period_(period),
      connections_(connections),
      beat_(std::move(beat)),
      timer_(loop.make_timer([this] { turn(); })) {}

Nanos HeartbeatRota::draw(Nanos low, Nanos high) {
  const auto span = static_cast<std::uint64_t>((high - low).count()) + 1;
  return low + Nanos(static_cast<Nanos::rep>(random_.next() % span));
}

void HeartbeatRota::start() {
  if (period_ <= Nanos::zero() || connections_ == 0) return;
  timer_->arm(draw(Nanos::zero(), period_));
}

void HeartbeatRota::stop() {
  timer_->disarm();
}

void HeartbeatRota::turn() {
  // The next turn first: a beat that stops the rota cancels it. At most 7/8 of a period after
  // this one, so that the round trip's answer too is in before a period of silence has passed
  // (a stale role or a hung server is then seen within `heartbeat` + `probe_timeout`, with an
  // eighth of a period to spare for the round trip and the loop's own lateness).
  timer_->arm(draw(period_ - period_ / 4, period_ - period_ / 8));
  beat_now();
}

void HeartbeatRota::beat_now() {
  for (std::size_t tried = 0; tried < connections_; ++tried) {
    const std::size_t index = next_;
    next_ = (next_ + 1) % connections_;
    if (beat_(index)) return;
  }
  // None could take it (all down, connecting or already probing): nothing is sent.
}

}  // namespace pgwd
