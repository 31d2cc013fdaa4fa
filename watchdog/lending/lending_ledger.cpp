#include "lending/lending_ledger.hpp"

#include <fcntl.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "lending/lending_desk.hpp"
#include "metrics/lent_series.hpp"
#include "pg/server_error.hpp"

namespace pgwd {
namespace {

using Clock = std::chrono::steady_clock;

/// Deaths of a target's lent connections this close together, with none of them left alive,
/// mean its server went away as a whole (a fast or immediate shutdown ends every session with
/// the 57P01 a single pg_terminate_backend also sends: only their number tells them apart).
constexpr auto kServerLostWindow = std::chrono::seconds(1);
/// How much longer than probe_timeout a take-back waits for a probe's answer, for a loop that
/// is late to run the probe's deadline.
constexpr auto kProbeGrace = std::chrono::seconds(1);

/// libpq's own notice receiver, which passes notices to the notice processor: a connection that
/// has it has no receiver of its own, so lending needs no argument to chain to it.
PQnoticeReceiver libpq_default_receiver() {
  static const PQnoticeReceiver receiver = [] {
    // A conninfo that fails to parse: libpq sets up an empty PGconn and never connects.
    PGconn* probe = PQconnectStart("pgwatchdog_no_such_option=1");
    const PQnoticeReceiver found = PQsetNoticeReceiver(probe, nullptr, nullptr);
    PQfinish(probe);
    return found;
  }();
  return receiver;
}

const char* why_not_lendable(PGconn* conn) {
  if (PQstatus(conn) != CONNECTION_OK) return "it is not open (PQstatus is not CONNECTION_OK)";
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) return "it is in pipeline mode";
  switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
      break;
    case PQTRANS_ACTIVE:
      return "it is busy: a command is in progress";
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
      return "it is inside a transaction: COMMIT or ROLLBACK first";
    case PQTRANS_UNKNOWN:
      return "it is not open (transaction status unknown)";
  }
  if (PQisBusy(conn)) return "it is busy: results are still to be read";
  return nullptr;
}

void check(const LendOptions& o) {
  const auto refuse = [](const std::string& why) { throw LendRefused("lend: " + why); };
  if (o.target.empty()) refuse("LendOptions::target must not be empty");
  if (o.probe_query.empty()) refuse("LendOptions::probe_query must not be empty");
  if (o.probe_timeout <= std::chrono::milliseconds::zero())
    refuse(fmt::format("LendOptions::probe_timeout must be positive (got {}ms)",
                       o.probe_timeout.count()));
  if (o.heartbeat < std::chrono::milliseconds::zero())
    refuse(fmt::format("LendOptions::heartbeat must not be negative (got {}ms)",
                       o.heartbeat.count()));
}

/// Take-back's last look: what arrived since the loop's last read (bytes the loop has not been
/// woken for yet). libpq reads, so bytes held inside OpenSSL count too.
struct LastLook {
  PQnoticeReceiver forward;
  void* forward_arg;
  std::optional<LoanDeath> ending;

  static void receive(void* self, const PGresult* result) {
    auto* look = static_cast<LastLook*>(self);
    if (look->forward) look->forward(look->forward_arg, result);
    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char* message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const std::string state = sqlstate ? sqlstate : "";
    const std::string level = severity_of(result);
    const std::string text = message ? message : "";
    if (look->ending) return;
    if (const auto cause = session_ending(level, state, text))
      look->ending = LoanDeath{*cause, state, text, std::chrono::system_clock::now()};
  }
};

void look_once_more(LoanState& loan) {
  PGconn* conn = loan.conn;
  LastLook look{loan.owner_receiver, loan.owner_receiver_arg, std::nullopt};
  PQsetNoticeReceiver(conn, &LastLook::receive, &look);
  const bool read = PQconsumeInput(conn) != 0;
  while (PGnotify* note = PQnotifies(conn)) {
    loan.notifications.push_back(
        {note->relname ? note->relname : "", note->extra ? note->extra : "", note->be_pid});
    loan.activity = true;
    PQfreemem(note);
  }
  if (look.ending) {
    loan.death = std::move(look.ending);
  } else if (!read || PQstatus(conn) == CONNECTION_BAD) {
    const char* error = PQerrorMessage(conn);
    loan.death = LoanDeath{Cause::closed, "", one_line(error ? error : ""),
                           std::chrono::system_clock::now()};
  }
  if (loan.death) loan.activity = true;
}

}  // namespace

struct LendingLedger::Group {
  Group(Store& store, const std::string& target) : series(store, target) {}
  LentSeries series;
  int alive = 0;                     ///< lent and not found dead
  std::deque<Clock::time_point> recent_deaths;
  bool told = false;                 ///< ServerLost told; again only after a new lend
  std::function<void(const ServerLost&)> on_server_lost;
};

LendingLedger::LendingLedger(std::function<void(std::function<void()>)> post, Store& store,
                             std::shared_ptr<spdlog::logger> log)
    : post_to_loop_(std::move(post)), log_(std::move(log)), store_(&store) {}

LendingLedger::~LendingLedger() = default;

LendingLedger::Group& LendingLedger::group(const std::string& target) {
  auto it = groups_.find(target);
  if (it != groups_.end()) return *it->second;
  auto made = std::make_unique<Group>(*store_, target);
  return *groups_.emplace(target, std::move(made)).first->second;
}

Loan LendingLedger::lend(PGconn* conn, LendOptions options, std::function<void()> on_probe_end) {
  if (!conn) throw LendRefused("lend: the connection is NULL");
  check(options);
  {
    // First, before anything reads the connection: a lent one is the loop's to read.
    const std::lock_guard lock(mutex_);
    if (lent_.count(conn))
      throw LendRefused(fmt::format("lend to target '{}': refused, the connection is already lent",
                                    options.target));
  }
  if (const char* why = why_not_lendable(conn))
    throw LendRefused(fmt::format("lend to target '{}': refused, {}", options.target, why));
  // PQsetNoticeReceiver with no receiver only reports the current one.
  const PQnoticeReceiver receiver = PQsetNoticeReceiver(conn, nullptr, nullptr);
  void* receiver_arg = nullptr;
  if (receiver != libpq_default_receiver()) {
    if (!options.notice_receiver_arg)
      throw LendRefused(fmt::format(
          "lend to target '{}': refused, the connection has a notice receiver of its own, and "
          "libpq does not reveal its argument: pass it in LendOptions::notice_receiver_arg",
          options.target));
    receiver_arg = *options.notice_receiver_arg;
  }

  auto loan = std::make_shared<LoanState>();
  loan->on_probe_end = std::move(on_probe_end);
  {
    const std::lock_guard lock(mutex_);
    if (detached_) throw LendRefused("lend: the Watchdog is shutting down");
    if (lent_.count(conn))
      throw LendRefused(fmt::format("lend to target '{}': refused, the connection is already lent",
                                    options.target));
    UniqueFd duplicate(::fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0));
    if (duplicate.get() < 0)
      throw LendRefused(fmt::format("lend to target '{}': refused, cannot duplicate its socket: {}",
                                    options.target, std::strerror(errno)));
    loan->owner_nonblocking = PQisnonblocking(conn) != 0;
    if (PQsetnonblocking(conn, 1) != 0)
      throw LendRefused(fmt::format("lend to target '{}': refused, cannot make it non-blocking: {}",
                                    options.target, one_line(PQerrorMessage(conn))));
    loan->conn = conn;
    loan->id = next_id_++;
    loan->owner_receiver = receiver;
    loan->owner_receiver_arg = receiver_arg;
    loan->lent_at = Clock::now();
    loan->ledger = shared_from_this();
    Group& g = group(options.target);
    g.series.lent().increment();
    ++g.alive;
    g.told = false;
    if (options.on_server_lost) g.on_server_lost = options.on_server_lost;
    loan->options = std::move(options);
    lent_.insert(conn);
    // The loop takes it from here; until it does, nobody reads the connection (a take-back
    // first makes the desk's registration a no-op).
    post([loan, fd = std::make_shared<UniqueFd>(std::move(duplicate))](LendingDesk& desk) {
      desk.adopt(loan, std::move(*fd));
    });
  }
  return Loan(std::move(loan));
}

TakenBack LendingLedger::take_back(LoanState& loan, bool wait) {
  std::unique_lock lock(loan.mutex);
  if (loan.phase == LoanState::Phase::returned)
    throw std::logic_error("Loan: the connection was taken back already");
  if (loan.phase == LoanState::Phase::probing) {
    if (!wait) {
      TakenBack busy;
      busy.verdict = LoanVerdict::busy;
      busy.activity = loan.activity;
      busy.probes = loan.probes;
      busy.lent_for = Clock::now() - loan.lent_at;
      const std::lock_guard ledger_lock(mutex_);
      if (store_)
        if (auto it = groups_.find(loan.options.target); it != groups_.end())
          it->second->series.take_back("busy").increment();
      return busy;
    }
    const auto deadline = Clock::now() + loan.options.probe_timeout + kProbeGrace;
    loan.changed.wait_until(lock, deadline,
                            [&] { return loan.phase != LoanState::Phase::probing; });
    if (loan.phase == LoanState::Phase::probing) {
      // The loop never ran the probe's deadline: the answer is still due, so the connection is
      // not clean. Taking it now (phase returned) keeps the loop's hands off it.
      loan.death = LoanDeath{Cause::probe_timeout, "",
                             "no answer to the probe, and the watchdog's loop did not run",
                             std::chrono::system_clock::now()};
    }
  }
  bool stopped = loan.phase == LoanState::Phase::stopped;
  {
    const std::lock_guard ledger_lock(mutex_);
    stopped = stopped || detached_;
  }
  if (!loan.death) look_once_more(loan);
  PQsetNoticeReceiver(loan.conn, loan.owner_receiver, loan.owner_receiver_arg);
  PQsetnonblocking(loan.conn, loan.owner_nonblocking ? 1 : 0);
  loan.phase = LoanState::Phase::returned;

  TakenBack result;
  result.verdict = loan.death ? LoanVerdict::dead
                   : stopped  ? LoanVerdict::watchdog_stopped
                              : LoanVerdict::alive;
  result.death = loan.death;
  result.activity = loan.activity;
  result.notifications = std::move(loan.notifications);
  result.probes = loan.probes;
  result.lent_for = Clock::now() - loan.lent_at;
  forget(loan, result);
  return result;
}

LoanVerdict LendingLedger::peek(const LoanState& loan) const {
  const std::lock_guard lock(loan.mutex);
  switch (loan.phase) {
    case LoanState::Phase::probing:
      return LoanVerdict::busy;
    case LoanState::Phase::dead:
      return LoanVerdict::dead;
    case LoanState::Phase::stopped:
      return loan.death ? LoanVerdict::dead : LoanVerdict::watchdog_stopped;
    case LoanState::Phase::returned:
      throw std::logic_error("Loan: the connection was taken back already");
    case LoanState::Phase::watching:
      break;
  }
  const std::lock_guard ledger_lock(mutex_);
  return detached_ ? LoanVerdict::watchdog_stopped : LoanVerdict::alive;
}

void LendingLedger::forget(LoanState& loan, const TakenBack& result) {
  const std::lock_guard lock(mutex_);
  lent_.erase(loan.conn);
  if (store_) {
    Group& g = group(loan.options.target);
    if (loan.counted_alive) --g.alive;
    g.series.lent().decrement();
    g.series.probes().increment(result.probes);
    g.series.notifications().increment(static_cast<double>(result.notifications.size()));
    g.series.take_back(to_string(result.verdict)).increment();
  }
  loan.counted_alive = false;
  post([id = loan.id](LendingDesk& desk) { desk.release(id); });
}

std::optional<LendingLedger::ServerLostReport> LendingLedger::record_death(LoanState& loan) {
  const std::lock_guard lock(mutex_);
  if (!store_) return std::nullopt;
  Group& g = group(loan.options.target);
  const LoanDeath& death = *loan.death;
  g.series.death(to_string(death.cause)).increment();
  if (loan.counted_alive) --g.alive;
  loan.counted_alive = false;

  const auto now = Clock::now();
  g.recent_deaths.push_back(now);
  while (!g.recent_deaths.empty() && now - g.recent_deaths.front() > kServerLostWindow)
    g.recent_deaths.pop_front();
  std::string reason;
  if (death.sqlstate == "57P02")
    reason = "57P02 on a lent connection (another server process crashed: every session ends)";
  else if (g.alive == 0 && g.recent_deaths.size() >= 2)
    reason = fmt::format("all {} of its lent connections died within {}s",
                         g.recent_deaths.size(), kServerLostWindow.count());
  if (reason.empty() || g.told) return std::nullopt;
  g.told = true;
  g.series.server_lost().increment();
  log_->warn("lending target {}: server lost: {}", loan.options.target, reason);
  return ServerLostReport{ServerLost{loan.options.target, reason, death, now}, g.on_server_lost};
}

void LendingLedger::attach(LendingDesk& desk) {
  const std::lock_guard lock(mutex_);
  desk_ = &desk;
}

void LendingLedger::detach() {
  const std::lock_guard lock(mutex_);
  desk_ = nullptr;
  detached_ = true;
  groups_.clear();  // their series go with them
  store_ = nullptr;
}

void LendingLedger::post(std::function<void(LendingDesk&)> task) {
  // Called with mutex_ held. The task runs on the loop thread, where the desk lives and dies:
  // if it is gone by then, the task finds no desk and does nothing.
  if (detached_) return;
  post_to_loop_([self = shared_from_this(), task = std::move(task)] {
    LendingDesk* desk = nullptr;
    {
      const std::lock_guard lock(self->mutex_);
      desk = self->desk_;
    }
    if (desk) task(*desk);
  });
}

}  // namespace pgwd
