#include "health/attempt_gate.hpp"

#include <algorithm>

namespace pgwd {

AttemptGate::AttemptGate(Loop& loop, std::size_t limit)
    : limit_(std::max<std::size_t>(limit, 1)),
      admit_timer_(loop.make_timer([this] { admit_waiting(); })) {}

AttemptGate::Ticket AttemptGate::enter(std::function<void()> admit) {
  const Ticket ticket = ++next_;
  waiting_.emplace_hint(waiting_.end(), ticket, std::move(admit));
  if (running_.size() < limit_ && !admit_timer_->armed()) admit_timer_->arm(Nanos::zero());
  return ticket;
}

std::optional<AttemptGate::Ticket> AttemptGate::try_enter() {
  if (running_.size() >= limit_ || !waiting_.empty()) return std::nullopt;
  const Ticket ticket = ++next_;
  running_.insert(running_.end(), ticket);
  return ticket;
}

void AttemptGate::leave(Ticket ticket) {
  if (running_.erase(ticket) == 0) {
    waiting_.erase(ticket);
    return;
  }
  if (!waiting_.empty() && !admit_timer_->armed()) admit_timer_->arm(Nanos::zero());
}

void AttemptGate::admit_waiting() {
  while (running_.size() < limit_ && !waiting_.empty()) {
    auto node = waiting_.extract(waiting_.begin());
    const Ticket ticket = node.key();
    std::function<void()> admit = std::move(node.mapped());
    running_.insert(ticket);
    admit();  // may leave() at once (a synchronous failure): the loop condition sees it
  }
}

}  // namespace pgwd
