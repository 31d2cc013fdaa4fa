#include "pg/host_walk.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <utility>

#include "pg/secrets.hpp"
#include "pg/server_error.hpp"

namespace pgwd {
namespace {

void append(Arrivals& to, Arrivals from) {
  for (Notification& n : from.notifications) to.notifications.push_back(std::move(n));
  for (Notice& n : from.notices) to.notices.push_back(std::move(n));
}

}  // namespace

HostWalk::HostWalk(const LinkSettings& settings, Loop& loop, Resolver& resolver,
                   Connector& connector, ActivityNotes& notes, const ConnectionRef& who,
                   WalkCallbacks& callbacks)
    : settings_(settings),
      loop_(loop),
      resolver_(resolver),
      connector_(connector),
      notes_(notes),
      who_(who),
      callbacks_(callbacks),
      host_deadline_(loop.make_timer([this] { on_host_deadline(); })),
      start_timer_(loop.make_timer([this] {
        retired_.clear();  // from the loop: no session of an earlier walk is on the stack
        try_host();
      })) {}

HostWalk::~HostWalk() {
  cancel();
}

void HostWalk::start() {
  cancel();
  host_index_ = 0;
  standby_pass_ = settings_.role == RoleRequirement::prefer_standby;
  host_failures_.clear();
  // From the loop: a host that fails at once (a bad address) must not report inside start().
  start_timer_->arm(Nanos::zero());
}

void HostWalk::cancel() {
  host_deadline_->disarm();
  start_timer_->disarm();
  if (lookup_) lookup_->cancel();  // not destroyed here: we may be inside its callback
  attempt_.reset();                // cancels; the connector finishes its PGconn
  retire_session();
  phase_ = Phase::closed;
  arrived_ = {};
}

void HostWalk::try_host() {
  const HostEntry& host = settings_.hosts[host_index_];
  host_deadline_->arm(settings_.host_timeout);
  if (host.resolve) {
    phase_ = Phase::resolving;
    // The lookup being replaced may be the one whose callback brought us here: keep it alive.
    previous_lookup_ = std::move(lookup_);
    lookup_ =
        resolver_.resolve(*host.resolve, [this](Resolution r) { on_lookup_done(std::move(r)); });
    return;
  }
  Conninfo conninfo = settings_.conninfo;
  if (!host.host.empty()) conninfo.set("host", host.host);
  if (!host.hostaddr.empty()) conninfo.set("hostaddr", host.hostaddr);
  if (!host.port.empty()) conninfo.set("port", host.port);
  start_connect(conninfo);
}

void HostWalk::host_failed(const Failure& failure) {
  // This host is done: close its attempt before trying the next one. What it said (notices)
  // goes along with the walk's outcome.
  host_deadline_->disarm();
  if (lookup_) lookup_->cancel();
  attempt_.reset();
  retire_session();
  const HostEntry& host = settings_.hosts[host_index_];
  host_failures_.push_back(host.label() + ": " + failure.message);
  // Like libpq: a wrong password or a missing database would be the same on every host.
  const bool stop_walk =
      failure.cause == Cause::auth_failed || failure.cause == Cause::database_missing;
  if (!stop_walk && host_index_ + 1 < settings_.hosts.size()) {
    ++host_index_;
    try_host();
    return;
  }
  if (!stop_walk && standby_pass_) {  // prefer-standby: no standby found, now take any server
    standby_pass_ = false;
    host_index_ = 0;
    try_host();
    return;
  }
  phase_ = Phase::closed;
  Failure reported = failure;
  if (host_failures_.size() > 1)
    reported.message = fmt::format("{}", fmt::join(host_failures_, "; "));
  callbacks_.on_connect_failed({reported, std::exchange(arrived_, {})});
}

void HostWalk::on_lookup_done(Resolution resolution) {
  if (phase_ != Phase::resolving) return;
  const HostEntry& host = settings_.hosts[host_index_];
  if (!resolution.error.empty()) {
    host_failed({Cause::dns, "",
                 fmt::format("could not resolve \"{}\": {}", *host.resolve, resolution.error)});
    return;
  }
  // One host entry per address: libpq tries them in order, and with hostaddr set it never does
  // a lookup of its own, while `host` still serves TLS verification and .pgpass.
  std::string hosts;
  std::string addresses;
  for (const std::string& address : resolution.addresses) {
    if (!hosts.empty()) {
      hosts += ',';
      addresses += ',';
    }
    hosts += *host.resolve;
    addresses += address;
  }
  Conninfo resolved = settings_.conninfo;
  resolved.set("host", hosts);
  resolved.set("hostaddr", addresses);
  if (!host.port.empty()) resolved.set("port", host.port);
  start_connect(resolved);
}

void HostWalk::start_connect(const Conninfo& conninfo) {
  phase_ = Phase::polling;
  // Ends in on_attempt_done, from the loop (never inside start()), unless cancelled first; or
  // libpq refused it at once, and start() says so.
  Connector::Started started = connector_.start(
      conninfo, who_, [this](AttemptOutcome outcome) { on_attempt_done(std::move(outcome)); });
  if (started.outcome) {
    on_attempt_done(std::move(*started.outcome));
    return;
  }
  attempt_ = std::move(started.attempt);
  callbacks_.on_resolved();
}

void HostWalk::on_host_deadline() {
  // What came in time counts: the loop may run this timer before the attempt's socket callback
  // (the pass budget declines either, and no loop promises their order), so the attempt first
  // takes what it has already received (ConnectAttempt::finish_if_ready), as its own callback
  // would have. The same race, and the same answer, as a probe's deadline
  // (Session::read_answer()).
  if (phase_ == Phase::polling && attempt_) {
    at_deadline_ = true;
    if (attempt_->finish_if_ready()) return;  // on_attempt_done ran: nothing here to touch
    at_deadline_ = false;
  }
  host_failed(host_timeout_failure());
}

Failure HostWalk::host_timeout_failure() const {
  return {
      Cause::connect_timeout, "",
      fmt::format("no connection within {}",
                  std::chrono::duration_cast<std::chrono::milliseconds>(settings_.host_timeout))};
}

void HostWalk::on_attempt_done(AttemptOutcome outcome) {
  attempt_.reset();  // it is over; destroying it inside its own callback is allowed
  const bool late = std::exchange(at_deadline_, false);
  if (phase_ != Phase::polling) return;
  if (!outcome.conn) {
    keep_startup_notices(std::move(outcome.notices));
    Failure failure = std::move(outcome.failure);
    failure.message = clean(failure.message);
    host_failed(failure);
    return;
  }
  finish_connect(std::move(outcome.conn), std::move(outcome.notices), late);
}

void HostWalk::finish_connect(PgConnPtr conn, std::vector<Notice> notices, bool late) {
  PQsetErrorVerbosity(conn.get(), PQERRORS_DEFAULT);
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    keep_startup_notices(std::move(notices));
    host_failed({Cause::connect_failed, "", clean(PQerrorMessage(conn.get()))});
    return;  // `conn` PQfinished
  }
  // The session reads the startup notices as its own: one that says the session is ending
  // (57P0x) ends it at the first look.
  SessionCallbacks& set_up_done = *this;  // until the session is handed over
  session_ = std::make_unique<PgSession>(PgSession::Owned{std::move(conn), std::move(notices)},
                                         settings_.session, settings_.hosts[host_index_].label(),
                                         loop_, notes_, who_, set_up_done);
  // Connected at the deadline's last look: a round trip still to come (a pooled target's first
  // query, setup_sql) has no time left within host_timeout.
  if (late && (settings_.session.pooled || !settings_.setup_sql.empty())) {
    host_failed(host_timeout_failure());
    return;
  }
  if (settings_.session.pooled) {
    // The role is known only after the first round trip (PgSession::set_up).
    phase_ = Phase::setting_up;
    session_->set_up(settings_.setup_sql);
    return;
  }
  if (!role_fits()) return;
  if (!settings_.setup_sql.empty()) {
    phase_ = Phase::setting_up;
    session_->set_up(settings_.setup_sql);
    return;
  }
  connected();
}

void HostWalk::on_probe_done(const ProbeDone& done) {
  if (phase_ != Phase::setting_up) return;
  keep(done.arrived);
  if (done.failure) {
    Failure failure = *done.failure;
    if (failure.cause == Cause::probe_failed) failure.cause = Cause::connect_failed;
    host_failed(failure);
    return;
  }
  if (settings_.session.pooled && !role_fits()) return;  // the role only now known
  connected();
}

bool HostWalk::role_fits() {
  const RoleRequirement wanted = standby_pass_ ? RoleRequirement::standby : settings_.role;
  if (const auto mismatch = role_mismatch(wanted, session_->server_info())) {
    host_failed({Cause::wrong_role, "", *mismatch});
    return false;
  }
  return true;
}

void HostWalk::connected() {
  host_deadline_->disarm();
  phase_ = Phase::closed;
  keep(session_->take_arrivals());
  const Connected connected{session_->server_info(), std::exchange(arrived_, {})};
  callbacks_.on_connected(std::move(session_), connected);
}

void HostWalk::retire_session() {
  if (!session_) return;
  keep(session_->take_arrivals());
  session_->close();
  retired_.push_back(std::move(session_));
}

void HostWalk::keep_startup_notices(std::vector<Notice> notices) {
  // Redacted here, where the DSN is known. One that says the session is ending says no more than
  // the host's failure that follows.
  for (Notice& notice : notices) {
    notice.message = clean(notice.message);
    if (!session_ending(notice.severity, notice.sqlstate, notice.message))
      arrived_.notices.push_back(std::move(notice));
  }
}

void HostWalk::keep(Arrivals arrived) {
  append(arrived_, std::move(arrived));
}

std::string HostWalk::clean(std::string_view message) const {
  return one_line(redact_secrets(message, settings_.session.dsn_for_redaction));
}

}  // namespace pgwd
