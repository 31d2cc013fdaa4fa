#include "health/idle_watch.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace pgwd {

IdleWatch::IdleWatch(Loop& loop, Nanos probe_timeout, IdleWatchEvents& events)
    : loop_(loop),
      probe_timeout_(probe_timeout),
      events_(events),
      deadline_(loop.make_timer([this] { deadline_passed(); })) {}

void IdleWatch::watch(Session& session) {
  deadline_->disarm();
  session_ = &session;
  phase_ = Phase::watching;
  session.watch_idle();
}

void IdleWatch::stop() {
  deadline_->disarm();
  session_ = nullptr;
  phase_ = Phase::off;
}

bool IdleWatch::probe(bool heartbeat) {
  if (phase_ != Phase::watching) return false;
  send(heartbeat);
  return true;
}

void IdleWatch::on_readable() {
  if (phase_ != Phase::watching) return;
  phase_ = Phase::inspecting;
  if (!events_.on_woken()) return;
  const Inspection seen = session_->inspect();  // reads; calls nothing back
  if (!events_.on_arrived(seen.arrived)) return;
  switch (seen.verdict) {
    case Inspection::Verdict::went_away:
      phase_ = Phase::off;
      events_.on_lost(seen.failure);
      return;
    case Inspection::Verdict::explained:
      phase_ = Phase::off;
      events_.on_fine();
      return;
    case Inspection::Verdict::unexplained:
      send(false);
      return;
  }
}

void IdleWatch::send(bool heartbeat) {
  if (!events_.on_probing(heartbeat)) return;
  phase_ = Phase::probing;
  heartbeat_ = heartbeat;
  sent_at_ = loop_.now();
  deadline_->arm(probe_timeout_);
  if (heartbeat)
    session_->heartbeat();  // reports later, from the loop
  else
    session_->probe();
}

void IdleWatch::deadline_passed() {
  if (phase_ != Phase::probing) return;
  // The answer may be in the socket already, its callback not run yet: the loop need not run a
  // socket's callback before a timer due in the same pass, and the GuardedLoop's pass budget
  // (Reports::pass_budget) declines a ready socket's callback to a later pass while it runs the
  // expiries it queued before. So the deadline reads the socket itself (non-blocking) before it
  // decides. Ordering ready reads before declined timers in the GuardedLoop instead would need to
  // know which socket a timer waits for, and would let a fleet of busy sockets starve the timers.
  if (std::optional<ProbeDone> done = session_->read_answer()) {
    on_probe_done(*done);
    return;
  }
  phase_ = Phase::off;
  if (!events_.on_probe_ended(ProbeResult::timeout, loop_.now() - sent_at_, heartbeat_)) return;
  // What came before the answer that never did (NOTIFYs read while the probe waited behind them)
  // was sent by the server and read: delivered, not closed away with the connection.
  if (!events_.on_arrived(session_->take_arrivals())) return;
  events_.on_lost(
      {Cause::probe_timeout, "",
       fmt::format("no answer to the probe within {}",
                   std::chrono::duration_cast<std::chrono::milliseconds>(probe_timeout_))});
}

void IdleWatch::on_probe_done(const ProbeDone& done) {
  if (phase_ != Phase::probing) return;
  deadline_->disarm();
  phase_ = Phase::off;
  if (!events_.on_arrived(done.arrived)) return;
  const Nanos took = loop_.now() - sent_at_;
  if (done.failure) {
    if (events_.on_probe_ended(ProbeResult::error, took, heartbeat_))
      events_.on_lost(*done.failure);
    return;
  }
  if (events_.on_probe_ended(ProbeResult::ok, took, heartbeat_)) events_.on_fine();
}

}  // namespace pgwd
