// The host's handle on a lent connection (pgwd/lending.hpp); the work is the ledger's.
#include <stdexcept>

#include "lending/lending_ledger.hpp"
#include "pgwd/lending.hpp"

namespace pgwd {

Loan::Loan(std::shared_ptr<LoanState> state) noexcept : state_(std::move(state)) {}

Loan::~Loan() {
  if (!state_) return;
  try {
    (void)take_back();
  } catch (...) {  // a destructor must not throw; the connection is the owner's either way
  }
}

Loan::Loan(Loan&& other) noexcept = default;

Loan& Loan::operator=(Loan&& other) noexcept {
  if (this != &other) {
    Loan ending(std::move(*this));  // takes the current one back
    state_ = std::move(other.state_);
  }
  return *this;
}

TakenBack Loan::take_back() {
  if (!state_) throw std::logic_error("Loan: nothing is lent");
  const std::shared_ptr<LoanState> state = std::move(state_);
  return state->ledger->take_back(*state, /*wait=*/true);
}

TakenBack Loan::try_take_back() {
  if (!state_) throw std::logic_error("Loan: nothing is lent");
  TakenBack result = state_->ledger->take_back(*state_, /*wait=*/false);
  if (result.verdict != LoanVerdict::busy) state_.reset();
  return result;
}

PGconn* Loan::connection() const noexcept {
  return state_ ? state_->conn : nullptr;
}

bool Loan::lent() const noexcept {
  return state_ != nullptr;
}

LoanVerdict Loan::peek() const {
  if (!state_) throw std::logic_error("Loan: nothing is lent");
  return state_->ledger->peek(*state_);
}

}  // namespace pgwd
