#include "health/attempt_gate.hpp"

#include <algorithm>

namespace pgwd {

AttemptGate::AttemptGate(Loop& loop, std::size_t limit)
    : limit_(std::max<std::size_t>(limit, 1)),
      admit_timer_(loop.make_timer([this] { admit_waiting(); })) {}

AttemptGate::Ticket AttemptGate::enter(std::string_view group, std::function<void()> admit) {
  const Ticket ticket = ++next_;
  auto line = lines_.find(group);
  if (line == lines_.end()) line = lines_.emplace(std::string(group), Line{}).first;
  line->second.emplace_hint(line->second.end(), ticket, std::move(admit));
  waiting_.emplace_hint(waiting_.end(), ticket, line->first);
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
    const auto waiting = waiting_.find(ticket);
    if (waiting == waiting_.end()) return;
    const auto line = lines_.find(waiting->second);
    line->second.erase(ticket);
    if (line->second.empty()) lines_.erase(line);
    waiting_.erase(waiting);
    return;
  }
  if (!waiting_.empty() && !admit_timer_->armed()) admit_timer_->arm(Nanos::zero());
}

void AttemptGate::admit_waiting() {
  while (running_.size() < limit_ && !waiting_.empty()) {
    // The next group after the last one served, wrapping round: every group with a waiting
    // attempt gets a slot before any gets a second.
    auto line = lines_.upper_bound(last_turn_);
    if (line == lines_.end()) line = lines_.begin();
    last_turn_ = line->first;
    auto node = line->second.extract(line->second.begin());
    if (line->second.empty()) lines_.erase(line);
    const Ticket ticket = node.key();
    waiting_.erase(ticket);
    std::function<void()> admit = std::move(node.mapped());
    running_.insert(ticket);
    admit();  // may leave() at once (a synchronous failure): the loop condition sees it
  }
}

}  // namespace pgwd
