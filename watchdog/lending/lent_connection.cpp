#include "lending/lent_connection.hpp"

#include <optional>
#include <stdexcept>

#include "pg/pg_link.hpp"

namespace pgwd {
namespace {

/// A lent connection is connected already: PgLink's resolver is never asked.
class NoResolver final : public Resolver {
 public:
  std::unique_ptr<Lookup> resolve(const std::string&, Done) override {
    throw std::logic_error("a lent connection resolves nothing");
  }
};
NoResolver no_resolver;

LinkSettings settings_for(const LoanState& loan) {
  LinkSettings settings;
  HostEntry host;
  const char* name = PQhost(loan.conn);
  const char* port = PQport(loan.conn);
  host.host = name ? name : "";
  host.port = port ? port : "";
  settings.hosts.push_back(std::move(host));
  settings.probe_query = loan.options.probe_query;
  return settings;
}

/// The adopted PgLink with what it refers to, which must outlive it.
class AdoptedSession final : public Session {
 public:
  AdoptedSession(const LoanState& loan, Loop& loop, ActivityNotes& notes,
                 SessionCallbacks& callbacks)
      : settings_(settings_for(loan)),
        who_{loan.options.target, static_cast<int>(loan.id)},
        forward_(callbacks),
        link_(settings_, loop, no_resolver, notes, who_, forward_,
              PgLink::Adopted{loan.conn, loan.owner_receiver, loan.owner_receiver_arg}) {}

  void watch_idle() override { link_.watch_idle(); }
  Inspection inspect() override { return link_.inspect(); }
  void probe() override { link_.probe(); }
  void heartbeat() override { link_.heartbeat(); }
  Arrivals take_arrivals() override { return link_.take_arrivals(); }
  std::optional<ProbeDone> read_answer() override { return link_.read_answer(); }
  void close() override { link_.close(); }
  ServerInfo server_info() const override { return link_.server_info(); }

 private:
  /// An adopted link only ever reports what an idle session does.
  class Forward final : public LinkCallbacks {
   public:
    explicit Forward(SessionCallbacks& to) : to_(to) {}
    void on_resolved() override {}
    void on_connected(const Connected&) override {}
    void on_connect_failed(const ConnectFailed&) override {}
    void on_readable() override { to_.on_readable(); }
    void on_probe_done(const ProbeDone& done) override { to_.on_probe_done(done); }

   private:
    SessionCallbacks& to_;
  };

  LinkSettings settings_;
  ConnectionRef who_;
  Forward forward_;
  PgLink link_;
};

}  // namespace

LentConnection::SessionFactory LentConnection::libpq_sessions(
    const std::shared_ptr<LoanState>& loan, ActivityNotes& notes) {
  return [loan, &notes](Loop& loop, SessionCallbacks& callbacks) -> std::unique_ptr<Session> {
    return std::make_unique<AdoptedSession>(*loan, loop, notes, callbacks);
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
      heartbeat_(loop_.make_timer([this] { idle_.probe(false); })) {}

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
