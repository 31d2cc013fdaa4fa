#include "lending/lending_desk.hpp"

namespace pgwd {

LendingDesk::LendingDesk(GuardedLoop& loop, std::shared_ptr<LendingLedger> ledger,
                         spdlog::logger& log)
    : loop_(loop),
      ledger_(std::move(ledger)),
      log_(log),
      tell_timer_(loop_.make_timer([this] { tell_hosts(); })) {
  ledger_->attach(*this);
}

LendingDesk::~LendingDesk() {
  shut_down();
}

void LendingDesk::shut_down() {
  open_ = false;
  ledger_->detach();
  tell_timer_->disarm();
  to_tell_.clear();
  for (auto& [id, connection] : lent_) connection->stop();
  for (auto& [id, connection] : lent_) loop_.delete_when_safe(std::move(connection));
  lent_.clear();
}

void LendingDesk::adopt(const std::shared_ptr<LoanState>& loan, UniqueFd duplicate) {
  const std::lock_guard lock(loan->mutex);
  // Taken back before the loop got to it: the connection is its owner's again, untouched.
  if (!loan->lent_to_loop()) return;
  auto connection = std::make_unique<LentConnection>(
      loan, loop_, std::move(duplicate), LentConnection::libpq_sessions(loan, loop_),
      [this](LoanState& dead) { died(dead); },
      [this](LoanState& answered) { probe_ended(answered); });
  connection->start();
  lent_.emplace(loan->id, std::move(connection));
}

void LendingDesk::release(std::uint64_t id) {
  const auto it = lent_.find(id);
  if (it == lent_.end()) return;  // taken back before it was adopted
  loop_.delete_when_safe(std::move(it->second));
  lent_.erase(it);
}

void LendingDesk::died(LoanState& loan) {
  // Inside the loan's own callback, its mutex held: record now, tell the hosts from the timer.
  auto lost = ledger_->record_death(loan);
  if (loan.options.on_death) {
    to_tell_.push_back([weak = std::weak_ptr<LoanState>(lent_.at(loan.id)->loan()),
                        death = *loan.death, tell = loan.options.on_death] {
      const auto still = weak.lock();
      if (!still) return;
      {
        const std::lock_guard lock(still->mutex);
        if (still->phase == LoanState::Phase::returned) return;  // the owner knows already
      }
      tell(death);
    });
  }
  if (lost && lost->tell)
    to_tell_.push_back(
        [lost = std::move(lost->lost), tell = std::move(lost->tell)] { tell(lost); });
  if (!to_tell_.empty()) tell_timer_->arm(Nanos::zero());
}

void LendingDesk::probe_ended(LoanState& loan) {
  // Inside the loan's own callback, its mutex held: told from the timer, like a death.
  if (!loan.on_probe_end) return;
  to_tell_.push_back(
      [weak = std::weak_ptr<LoanState>(lent_.at(loan.id)->loan()), tell = loan.on_probe_end] {
        const auto still = weak.lock();
        if (!still) return;
        {
          const std::lock_guard lock(still->mutex);
          if (still->phase == LoanState::Phase::returned) return;  // taken back meanwhile
        }
        tell();
      });
  tell_timer_->arm(Nanos::zero());
}

void LendingDesk::tell_hosts() {
  auto due = std::move(to_tell_);
  to_tell_.clear();
  for (auto& tell : due) {
    if (!open_) return;  // a callback destroyed the Watchdog: nothing more is told
    try {
      tell();
    } catch (const std::exception& e) {
      log_.error("a lending callback threw: {} (ignored)", e.what());
    } catch (...) {
      log_.error("a lending callback threw a non-standard exception (ignored)");
    }
  }
}

}  // namespace pgwd
