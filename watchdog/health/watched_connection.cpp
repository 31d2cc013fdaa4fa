#include "health/watched_connection.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace pgwd {

WatchedConnection::WatchedConnection(ConnectionRef ref, const LifecycleSettings& settings,
                                     Scheduler& scheduler, Random& random, ConnectionEvents& events,
                                     const LinkFactory& make_link, AttemptGate* gate)
    : ref_(std::move(ref)),
      settings_(settings),
      scheduler_(scheduler),
      events_(events),
      backoff_(settings.backoff_initial, settings.backoff_max, random),
      attempt_deadline_(scheduler.make_timer([this] {
        link_->close();
        attempt_failed({Cause::connect_timeout, "",
                        fmt::format("no connection within {}",
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        settings_.connect_timeout))});
      })),
      probe_deadline_(scheduler.make_timer([this] {
        probe_finished(ProbeResult::timeout);
        go_down({Cause::probe_timeout, "",
                 fmt::format("no answer to the probe within {}",
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 settings_.probe_timeout))});
      })),
      heartbeat_(scheduler.make_timer([this] {
        if (state_ == ConnectionState::healthy) start_probe();
      })),
      retry_(scheduler.make_timer([this] {
        events_.on_reconnect_attempt({ref_, attempt_ + 1});
        begin_attempt();
      })),
      gate_(gate),
      link_(make_link(static_cast<LinkCallbacks&>(*this))) {}

WatchedConnection::~WatchedConnection() {
  link_->close();
  attempt_over();
}

void WatchedConnection::enter(ConnectionState next) {
  if (next == state_) return;
  const ConnectionState previous = state_;
  state_ = next;
  events_.on_state_change({ref_, previous, next});
}

void WatchedConnection::start() {
  begin_attempt();
}

void WatchedConnection::stop() {
  attempt_deadline_->disarm();
  probe_deadline_->disarm();
  heartbeat_->disarm();
  retry_->disarm();
  link_->close();
  attempt_over();
  enter(ConnectionState::stopped);
}

void WatchedConnection::begin_attempt() {
  if (!gate_) {
    start_attempt();
    return;
  }
  // Stays in its current state (backoff, or stopped before the first attempt) until admitted.
  gate_ticket_ = gate_->enter([this] { start_attempt(); });
}

void WatchedConnection::start_attempt() {
  ++attempt_;
  enter(ConnectionState::resolving);
  attempt_deadline_->arm(settings_.connect_timeout);
  link_->connect();  // may report back before it returns: nothing follows it here
}

void WatchedConnection::attempt_over() {
  if (gate_ticket_) gate_->leave(*gate_ticket_);
  gate_ticket_.reset();
}

void WatchedConnection::on_resolved() {
  if (state_ == ConnectionState::resolving) enter(ConnectionState::connecting);
}

void WatchedConnection::on_connected(const ServerInfo& server) {
  attempt_deadline_->disarm();
  attempt_over();
  backoff_.reset();
  server_ = server;
  HealthyEvent healthy{ref_, server, attempt_, std::nullopt};
  if (lost_at_) healthy.outage = scheduler_.now() - *lost_at_;
  lost_at_.reset();
  attempt_ = 0;
  become_healthy();
  events_.on_healthy(healthy);
}

void WatchedConnection::on_connect_failed(const Failure& failure) {
  attempt_deadline_->disarm();
  link_->close();
  attempt_failed(failure);
}

void WatchedConnection::attempt_failed(const Failure& failure) {
  attempt_over();
  const Nanos delay = backoff_.next();
  enter(ConnectionState::backoff);
  // Reported before the countdown starts, so the next attempt never begins less than `delay`
  // after the failure was reported; an observer that removed the target has stopped us meanwhile.
  events_.on_connect_failed(
      {ref_, attempt_, failure.cause, failure.sqlstate, failure.message, delay});
  if (state_ == ConnectionState::backoff) retry_->arm(delay);
}

void WatchedConnection::become_healthy() {
  enter(ConnectionState::healthy);
  link_->watch_idle();
  if (settings_.heartbeat > Nanos::zero()) heartbeat_->arm(settings_.heartbeat);
}

void WatchedConnection::on_readable() {
  if (state_ != ConnectionState::healthy) return;
  events_.on_wakeup(ref_);
  inspect();
}

void WatchedConnection::check_now() {
  if (state_ == ConnectionState::healthy) inspect();
}

void WatchedConnection::inspect() {
  enter(ConnectionState::inspecting);
  const Inspection seen = link_->inspect();
  if (state_ != ConnectionState::inspecting) return;  // an observer stopped us meanwhile
  switch (seen.verdict) {
    case Inspection::Verdict::went_away:
      go_down(seen.failure);
      break;
    case Inspection::Verdict::explained:
      if (role_still_fits())
        become_healthy();  // activity restarts the heartbeat's count of silence
      break;
    case Inspection::Verdict::unexplained:
      start_probe();
      break;
  }
}

void WatchedConnection::start_probe() {
  heartbeat_->disarm();
  enter(ConnectionState::probing);
  probe_sent_at_ = scheduler_.now();
  probe_deadline_->arm(settings_.probe_timeout);
  link_->probe();
}

void WatchedConnection::probe_finished(ProbeResult result) {
  probe_deadline_->disarm();
  events_.on_probe({ref_, result, scheduler_.now() - probe_sent_at_});
}

void WatchedConnection::on_probe_succeeded() {
  if (state_ != ConnectionState::probing) return;
  probe_finished(ProbeResult::ok);
  if (role_still_fits()) become_healthy();
}

bool WatchedConnection::role_still_fits() {
  // An idle connection is told nothing when its server is promoted or demoted: a probe's
  // ParameterStatus is where a new role first shows.
  const ServerInfo now = link_->server_info();
  if (now.in_hot_standby != server_.in_hot_standby) {
    const std::string previous = server_.in_hot_standby;
    server_ = now;
    events_.on_role_change({ref_, now.in_hot_standby, previous});
  }
  server_ = now;
  if (const auto mismatch = role_mismatch(settings_.role, now)) {
    go_down({Cause::wrong_role, "", *mismatch});
    return false;
  }
  return true;
}

void WatchedConnection::on_probe_failed(const Failure& failure) {
  if (state_ != ConnectionState::probing) return;
  probe_finished(ProbeResult::error);
  go_down(failure);
}

void WatchedConnection::go_down(const Failure& failure) {
  heartbeat_->disarm();
  probe_deadline_->disarm();
  link_->close();  // unregisters the socket before libpq closes it
  lost_at_ = scheduler_.now();
  attempt_ = 0;
  enter(ConnectionState::down);
  events_.on_down({ref_, failure.cause, failure.sqlstate, failure.message});
  if (state_ == ConnectionState::down) retry_later();
}

void WatchedConnection::retry_later() {
  enter(ConnectionState::backoff);
  retry_->arm(backoff_.next());
}

void WatchedConnection::on_notification(const Notification& n) {
  events_.on_notification({ref_, n.channel, n.payload, n.sender_pid});
}

void WatchedConnection::on_notice(const Notice& n) {
  events_.on_notice({ref_, n.severity, n.sqlstate, n.message});
}

}  // namespace pgwd
