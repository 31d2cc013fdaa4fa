#include "lending/lent_connection.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <optional>
#include <string>

#include "pg/host_list.hpp"

namespace pgwd {
namespace {

SessionSettings settings_for(const LoanState& loan) {
  SessionSettings settings;
  settings.probe_query = loan.options.probe_query;
  return settings;
}

/// "host:port" of the lent connection, as server_info() names it.
std::string host_of(PGconn* conn) {
  HostEntry host;
  const char* name = PQhost(conn);
  const char* port = PQport(conn);
  host.host = name ? name : "";
  host.port = port ? port : "";
  return host.label();
}

}  // namespace

LentConnection::LentConnection(std::shared_ptr<LoanState> loan, Loop& loop, ActivityNotes& notes,
                               UniqueFd duplicate, Died died, ProbeEnded probe_ended)
    : loan_(std::move(loan)),
      who_{loan_->options.target, static_cast<int>(loan_->id)},
      settings_(settings_for(*loan_)),
      notes_(notes),
      died_(std::move(died)),
      probe_ended_(std::move(probe_ended)),
      loop_(loop, *loan_, PQsocket(loan_->conn), std::move(duplicate)),
      probe_deadline_(loop_.make_timer([this] {
        // The answer may be in the socket, its callback not run yet (WatchedConnection's
        // probe_timed_out() says why): read before deciding.
        if (std::optional<ProbeDone> done = link_->read_answer()) {
          on_probe_done(*done);
          return;
        }
        keep(link_->take_arrivals());  // what came before the answer that never did: kept
        die({Cause::probe_timeout, "",
             fmt::format("no answer to the probe within {}", loan_->options.probe_timeout)});
      })),
      heartbeat_(loop_.make_timer([this] {
        if (loan_->phase == LoanState::Phase::watching) start_probe();
      })) {}

LentConnection::~LentConnection() {
  // Lets go without touching the connection: it may be its owner's again by now. close()
  // unregisters the socket and forgets the PGconn; it never finishes a borrowed one.
  if (link_) link_->close();
}

void LentConnection::start() {
  SessionCallbacks& callbacks = *this;
  link_ = std::make_unique<PgSession>(
      PgSession::Borrowed{loan_->conn, loan_->owner_receiver, loan_->owner_receiver_arg}, settings_,
      host_of(loan_->conn), loop_, notes_, who_, callbacks);
  watch();
}

void LentConnection::stop() {
  const std::lock_guard lock(loan_->mutex);
  if (!loan_->lent_to_loop()) return;
  if (loan_->phase == LoanState::Phase::probing) {
    // The probe's answer is still on its way: the connection is no longer idle and clean.
    loan_->death =
        LoanDeath{Cause::probe_failed, "", "the watchdog stopped while a probe was in flight",
                  std::chrono::system_clock::now()};
  }
  loan_->phase = LoanState::Phase::stopped;
  probe_deadline_->disarm();
  heartbeat_->disarm();
  if (link_) link_->close();
  loan_->changed.notify_all();
}

void LentConnection::watch() {
  loan_->phase = LoanState::Phase::watching;
  link_->watch_idle();
  if (loan_->options.heartbeat > std::chrono::milliseconds::zero())
    heartbeat_->arm(loan_->options.heartbeat);
}

void LentConnection::keep(const Arrivals& arrived) {
  for (const Notification& n : arrived.notifications)
    loan_->notifications.push_back({n.channel, n.payload, n.sender_pid});
}

void LentConnection::on_readable() {
  loan_->activity = true;
  const Inspection inspection = link_->inspect();
  keep(inspection.arrived);
  switch (inspection.verdict) {
    case Inspection::Verdict::went_away:
      die(inspection.failure);
      return;
    case Inspection::Verdict::explained:
      if (loan_->options.heartbeat > std::chrono::milliseconds::zero())
        heartbeat_->arm(loan_->options.heartbeat);
      return;
    case Inspection::Verdict::unexplained:
      start_probe();
      return;
  }
}

void LentConnection::start_probe() {
  heartbeat_->disarm();
  loan_->phase = LoanState::Phase::probing;
  loan_->probe_sent_at = loop_.now();
  ++loan_->probes;
  probe_deadline_->arm(loan_->options.probe_timeout);
  link_->probe();
}

void LentConnection::on_probe_done(const ProbeDone& done) {
  probe_deadline_->disarm();
  keep(done.arrived);
  if (done.failure) {
    die(*done.failure);
    return;
  }
  watch();
  loan_->changed.notify_all();
  probe_ended_(*loan_);
}

void LentConnection::die(const Failure& failure) {
  probe_deadline_->disarm();
  heartbeat_->disarm();
  link_->close();
  loan_->phase = LoanState::Phase::dead;
  loan_->death =
      LoanDeath{failure.cause, failure.sqlstate, failure.message, std::chrono::system_clock::now()};
  loan_->changed.notify_all();
  died_(*loan_);
}

}  // namespace pgwd
