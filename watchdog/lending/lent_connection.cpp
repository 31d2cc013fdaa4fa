#include "lending/lent_connection.hpp"

#include <optional>
#include <string>

#include "pg/host_list.hpp"
#include "pg/pg_session.hpp"

namespace pgwd {
namespace {

/// A borrowed PgSession over the loan's connection, with what it refers to (its settings and
/// its name), which must outlive it.
class LentSession final : public Session {
 public:
  LentSession(const LoanState& loan, Loop& loop, ActivityNotes& notes, SessionCallbacks& callbacks)
      : settings_(settings_for(loan)),
        who_{loan.options.target, static_cast<int>(loan.id)},
        session_(PgSession::Borrowed{loan.conn, loan.owner_receiver, loan.owner_receiver_arg},
                 settings_, host_of(loan.conn), loop, notes, who_, callbacks) {}

  void watch_idle() override { session_.watch_idle(); }
  Inspection inspect() override { return session_.inspect(); }
  void probe() override { session_.probe(); }
  void heartbeat() override { session_.heartbeat(); }
  Arrivals take_arrivals() override { return session_.take_arrivals(); }
  std::optional<ProbeDone> read_answer() override { return session_.read_answer(); }
  void close() override { session_.close(); }
  ServerInfo server_info() const override { return session_.server_info(); }

 private:
  static SessionSettings settings_for(const LoanState& loan) {
    SessionSettings settings;
    settings.probe_query = loan.options.probe_query;
    settings.heartbeat_query = loan.options.heartbeat_query;
    return settings;
  }
  /// "host:port" of the lent connection, as server_info() names it.
  static std::string host_of(PGconn* conn) {
    HostEntry host;
    const char* name = PQhost(conn);
    const char* port = PQport(conn);
    host.host = name ? name : "";
    host.port = port ? port : "";
    return host.label();
  }

  SessionSettings settings_;
  ConnectionRef who_;
  PgSession session_;
};

}  // namespace

LentConnection::SessionFactory LentConnection::libpq_sessions(
    const std::shared_ptr<LoanState>& loan, ActivityNotes& notes) {
  return [loan, &notes](Loop& loop, SessionCallbacks& callbacks) -> std::unique_ptr<Session> {
    return std::make_unique<LentSession>(*loan, loop, notes, callbacks);
  };
}

LentConnection::LentConnection(std::shared_ptr<LoanState> loan, Loop& loop, UniqueFd duplicate,
                               SessionFactory make_session, Died died, ProbeEnded probe_ended)
    : loan_(std::move(loan)),
      make_session_(std::move(make_session)),
      died_(std::move(died)),
      probe_ended_(std::move(probe_ended)),
      loop_(loop, *loan_, PQsocket(loan_->conn), std::move(duplicate)),
      idle_(loop_, loan_->options.probe_timeout, *this),
      heartbeat_(loop_.make_timer([this] { idle_.probe(/*heartbeat=*/true); })) {}

LentConnection::~LentConnection() {
  // Lets go without touching the connection: it may be its owner's again by now. close()
  // unregisters the socket and forgets the PGconn; it never finishes a lent one.
  if (session_) session_->close();
}

void LentConnection::start() {
  session_ = make_session_(loop_, idle_);
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
  idle_.stop();
  heartbeat_->disarm();
  if (session_) session_->close();
  loan_->changed.notify_all();
}

void LentConnection::watch() {
  loan_->phase = LoanState::Phase::watching;
  idle_.watch(*session_);
  if (loan_->options.heartbeat > std::chrono::milliseconds::zero())
    heartbeat_->arm(loan_->options.heartbeat);
}

bool LentConnection::on_woken() {
  loan_->activity = true;
  return true;
}

bool LentConnection::on_arrived(const Arrivals& arrived) {
  for (const Notification& n : arrived.notifications)
    loan_->notifications.push_back({n.channel, n.payload, n.sender_pid});
  return true;
}

bool LentConnection::on_probing(bool) {
  heartbeat_->disarm();
  loan_->phase = LoanState::Phase::probing;
  loan_->probe_sent_at = loop_.now();
  ++loan_->probes;
  return true;
}

void LentConnection::on_fine() {
  const bool probed = loan_->phase == LoanState::Phase::probing;
  watch();  // the heartbeat counts silence from here
  if (!probed) return;
  loan_->changed.notify_all();
  probe_ended_(*loan_);
}

void LentConnection::on_lost(const Failure& failure) {
  idle_.stop();
  heartbeat_->disarm();
  session_->close();
  loan_->phase = LoanState::Phase::dead;
  loan_->death =
      LoanDeath{failure.cause, failure.sqlstate, failure.message, std::chrono::system_clock::now()};
  loan_->changed.notify_all();
  died_(*loan_);
}

}  // namespace pgwd
