#include "health/watched_connection.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace pgwd {
namespace {

std::chrono::milliseconds ms(Nanos d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

}  // namespace

bool server_wide_end(Cause cause) noexcept {
  return cause == Cause::immediate_shutdown || cause == Cause::server_crash;
}

WatchedConnection::WatchedConnection(ConnectionRef ref, const LifecycleSettings& settings,
                                     Loop& loop, Random& random, ConnectionEvents& events,
                                     const LinkFactory& make_link, AttemptGate* gate)
    : ref_(std::move(ref)),
      settings_(settings),
      loop_(loop),
      events_(events),
      backoff_(settings.backoff_initial, settings.backoff_max, random),
      attempt_deadline_(loop.make_timer([this] { attempt_timed_out(); })),
      idle_(loop, settings.probe_timeout, *this),
      retry_(loop.make_timer([this] { retry_now(); })),
      gate_(gate),
      make_link_(make_link),
      links_{make_link_(sides_[0], ref_), nullptr} {}

WatchedConnection::~WatchedConnection() {
  drop_hedge();
  link().close();
  attempt_over();
}

bool WatchedConnection::enter(ConnectionState next) {
  if (!live()) return false;  // stopped is final
  if (next == state_) return true;
  const ConnectionState previous = state_;
  state_ = next;
  events_.on_state_change({ref_, previous, next});
  return live();
}

bool WatchedConnection::deliver(const Arrivals& arrived) {
  for (const Notification& n : arrived.notifications) {
    events_.on_notification({ref_, n.channel, n.payload, n.sender_pid});
    if (!live()) return false;
  }
  for (const Notice& n : arrived.notices) {
    events_.on_notice({ref_, n.severity, n.sqlstate, n.message});
    if (!live()) return false;
  }
  return true;
}

void WatchedConnection::start() {
  if (state_ == ConnectionState::waiting && !gate_ticket_) begin_attempt();
}

void WatchedConnection::stop() {
  if (!live()) return;
  attempt_deadline_->disarm();
  idle_.stop();
  retry_->disarm();
  drop_hedge();
  link().close();
  attempt_over();
  enter(ConnectionState::stopped);
}

void WatchedConnection::begin_attempt() {
  if (!gate_) {
    start_attempt();
    return;
  }
  // Stays `waiting` until admitted; stop() gives the ticket back.
  gate_ticket_ = gate_->enter(ref_.target, [this] { start_attempt(); });
}

void WatchedConnection::start_attempt() {
  if (state_ != ConnectionState::waiting) return;
  ++attempt_;
  attempt_started_ = loop_.now();
  if (!enter(ConnectionState::resolving)) return;
  attempt_deadline_->arm(settings_.connect_timeout);
  link().connect();  // reports later, from the loop
}

bool WatchedConnection::hedge(Nanos older_than) {
  if (!attempting()) return false;
  if (loop_.now() - (hedging_ ? hedge_started_ : attempt_started_) < older_than) return false;
  // The slot of a hedge still on its way passes to its successor.
  std::optional<AttemptGate::Ticket> ticket = std::exchange(hedge_ticket_, std::nullopt);
  if (gate_ && !ticket) {
    ticket = gate_->try_enter();
    if (!ticket) return false;
  }
  drop_hedge();
  if (!links_[other()]) links_[other()] = make_link_(sides_[other()], ref_);
  hedging_ = true;
  hedge_started_ = loop_.now();
  hedge_ticket_ = ticket;
  links_[other()]->connect();  // reports later, from the loop
  return true;
}

void WatchedConnection::drop_hedge() {
  if (!hedging_) return;
  hedging_ = false;
  links_[other()]->close();
  if (hedge_ticket_) gate_->leave(*hedge_ticket_);
  hedge_ticket_.reset();
}

void WatchedConnection::promote_hedge() {
  link().close();
  attempt_over();
  gate_ticket_ = std::exchange(hedge_ticket_, std::nullopt);
  hedging_ = false;
  main_ = other();
  attempt_started_ = hedge_started_;
  // The hedge's own deadline, counted from its start.
  const Nanos left = hedge_started_ + settings_.connect_timeout - loop_.now();
  attempt_deadline_->arm(std::max(left, Nanos::zero()));
}

void WatchedConnection::attempt_over() {
  if (gate_ticket_) gate_->leave(*gate_ticket_);
  gate_ticket_.reset();
}

void WatchedConnection::on_resolved() {  // from either link: one of them got past DNS
  if (state_ == ConnectionState::resolving) enter(ConnectionState::connecting);
}

void WatchedConnection::on_connected(std::size_t slot, const Connected& connected) {
  if (!attempting()) return;
  if (slot != main_) {
    if (!hedging_) return;
    promote_hedge();  // the hedge won the race
  }
  drop_hedge();
  attempt_deadline_->disarm();
  attempt_over();
  backoff_.reset();
  server_ = connected.server;
  HealthyEvent healthy{ref_, connected.server, attempt_, std::nullopt};
  if (lost_at_) healthy.outage = loop_.now() - *lost_at_;
  lost_at_.reset();
  attempt_ = 0;
  if (!deliver(connected.arrived)) return;
  if (!become_healthy()) return;
  events_.on_healthy(healthy);
}

void WatchedConnection::on_connect_failed(std::size_t slot, const ConnectFailed& failed) {
  if (!attempting()) return;
  // Either way the other link goes on, and what the failed one read is not delivered: it is
  // about a session that never was.
  if (slot != main_) {
    drop_hedge();
    return;
  }
  if (hedging_) {
    promote_hedge();
    return;
  }
  attempt_deadline_->disarm();
  link().close();
  attempt_failed(failed.failure, failed.arrived);
}

void WatchedConnection::attempt_timed_out() {
  if (!attempting()) return;
  if (hedging_) {
    promote_hedge();  // it started later: its own deadline has not passed
    return;
  }
  link().close();
  attempt_failed({Cause::connect_timeout, "",
                  fmt::format("no connection within {}", ms(settings_.connect_timeout))},
                 {});
}

void WatchedConnection::attempt_failed(const Failure& failure, const Arrivals& arrived) {
  attempt_over();
  if (!deliver(arrived)) return;
  const Nanos delay = backoff_.next();
  if (!enter(ConnectionState::backoff)) return;
  // Reported before the countdown starts, so the next attempt never begins less than `delay`
  // after the failure was reported.
  events_.on_connect_failed(
      {ref_, attempt_, failure.cause, failure.sqlstate, failure.message, delay});
  if (live()) arm_retry(delay);
}

void WatchedConnection::arm_retry(Nanos delay) {
  retry_due_ = loop_.now() + delay;
  retry_->arm(delay);
}

void WatchedConnection::retry_within(Nanos delay) {
  if (state_ != ConnectionState::backoff) return;
  const MonotonicTime due = loop_.now() + delay;
  if (due < retry_due_) arm_retry(delay);
}

bool WatchedConnection::heartbeat() {
  return state_ == ConnectionState::healthy && idle_.probe(true);
}

void WatchedConnection::retry_now() {
  if (state_ != ConnectionState::backoff) return;
  if (!enter(ConnectionState::waiting)) return;
  events_.on_reconnect_attempt({ref_, attempt_ + 1});
  if (live()) begin_attempt();
}

bool WatchedConnection::become_healthy() {
  if (!enter(ConnectionState::healthy)) return false;
  idle_.watch(link());
  return true;
}

void WatchedConnection::on_readable(std::size_t slot) {
  if (slot == main_ && state_ == ConnectionState::healthy) idle_.on_readable();
}

void WatchedConnection::on_probe_done(std::size_t slot, const ProbeDone& done) {
  if (slot == main_ && state_ == ConnectionState::probing) idle_.on_probe_done(done);
}

bool WatchedConnection::on_woken() {
  events_.on_wakeup(ref_);
  return enter(ConnectionState::inspecting);
}

bool WatchedConnection::on_probing(bool) { return enter(ConnectionState::probing); }

bool WatchedConnection::on_probe_ended(ProbeResult result, Nanos took, bool heartbeat) {
  events_.on_probe({ref_, result, took, heartbeat});
  return live();
}

void WatchedConnection::on_fine() {
  if (role_still_fits()) become_healthy();
}

bool WatchedConnection::role_still_fits() {
  // An idle connection is told nothing when its server is promoted or demoted: the
  // ParameterStatus before a heartbeat's or a probe's ReadyForQuery is where a new role shows.
  const ServerInfo now = link().server_info();
  events_.on_server_refreshed(ref_, now);
  if (!live()) return false;
  // From unknown to known is no change (before PostgreSQL 14 the first heartbeat's SQL answer is
  // where the role becomes known at all).
  if (!server_.in_hot_standby.empty() && now.in_hot_standby != server_.in_hot_standby) {
    const std::string previous = server_.in_hot_standby;
    server_ = now;
    events_.on_role_change({ref_, now.in_hot_standby, previous});
    if (!live()) return false;
  }
  server_ = now;
  if (const auto mismatch = role_mismatch(settings_.role, now)) {
    go_down({Cause::wrong_role, "", *mismatch});
    return false;
  }
  return true;
}

void WatchedConnection::go_down(const Failure& failure) {
  idle_.stop();
  lost_at_ = loop_.now();
  attempt_ = 0;
  // The host hears first and the link is closed right after, before the loop runs again (so no
  // event of the socket comes in between): PQfinish, a Terminate sent and the socket closed, was
  // a third of the CPU from readiness to on_down (bench/README.md "Current figures"). A stop() from
  // inside the events closes the link itself.
  if (!enter(ConnectionState::down)) return;
  events_.on_down({ref_, failure.cause, failure.sqlstate, failure.message});
  if (!live()) return;
  link().close();  // unregisters the socket before libpq closes it
  // After a server-wide end every sibling is going down too, and an attempt before the restart
  // is refused, or, while the postmaster waits for its backends to exit, forks a backend only to
  // be told 57P03: a hundred such attempts per target within the first backoff fell inside an
  // immediate stop's burst of downs, on the loop and on the cores still reporting them
  // (bench/README.md, `stop_immediate`). The scout tries once per scout_interval instead and
  // brings the siblings back when one gets through.
  if (settings_.scouted && server_wide_end(failure.cause))
    wait_for_scout();
  else
    retry_later();
}

void WatchedConnection::retry_later() {
  if (enter(ConnectionState::backoff)) arm_retry(backoff_.next());
}

void WatchedConnection::wait_for_scout() {
  if (!enter(ConnectionState::backoff)) return;
  retry_->disarm();
  retry_due_ = MonotonicTime::max();  // any retry_within() is sooner
}

}  // namespace pgwd
