#include "metrics/store.hpp"

#include <libpq-fe.h>

#include "metrics/exposition.hpp"
#include "metrics/families.hpp"
#include "pgwd/version.hpp"

namespace pgwd {

SeriesStore::~SeriesStore() = default;

std::string SeriesStore::text() const {
  std::string out;
  append_text(out);
  return out;
}

namespace {

std::string libpq_version() {
  const int v = PQlibVersion();  // e.g. 150020 -> "15.20"
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

}  // namespace

std::shared_ptr<SeriesStore> make_series_store() {
  auto store = std::make_shared<Store>();
  auto row = std::make_shared<Row>(
      std::vector<Label>{{"version", std::string(kVersion)}, {"libpq", libpq_version()}});
  row->gauge(families::build_info).set(1);
  row->seal();
  store->rows_.push_back(std::move(row));  // never withdrawn: no handle
  return store;
}

Store::Store() = default;

RowHandle::RowHandle(std::shared_ptr<Store> store,
                     std::list<std::shared_ptr<const Row>>::iterator place)
    : store_(std::move(store)), place_(place) {}

RowHandle::RowHandle(RowHandle&& other) noexcept
    : store_(std::move(other.store_)), place_(other.place_) {}

RowHandle& RowHandle::operator=(RowHandle&& other) noexcept {
  if (this != &other) {
    withdraw();
    store_ = std::move(other.store_);
    place_ = other.place_;
  }
  return *this;
}

RowHandle::~RowHandle() {
  withdraw();
}

void RowHandle::withdraw() noexcept {
  if (!store_) return;
  store_->withdraw(place_);
  store_.reset();
}

RowHandle Store::publish(std::shared_ptr<Row> row) {
  row->seal();
  const std::lock_guard lock(rows_mutex_);
  rows_.push_back(std::move(row));
  return RowHandle(shared_from_this(), std::prev(rows_.end()));
}

void Store::withdraw(Rows::iterator place) noexcept {
  std::shared_ptr<const Row> row;  // freed outside the lock, unless a scrape still holds it
  const std::lock_guard lock(rows_mutex_);
  row = std::move(*place);
  rows_.erase(place);
}

std::vector<std::shared_ptr<const Row>> Store::snapshot() const {
  const std::lock_guard lock(rows_mutex_);
  return {rows_.begin(), rows_.end()};
}

void Store::append_text(std::string& out) const {
  append_exposition(snapshot(), out);
}

Store::Claim::Claim(std::shared_ptr<Store> store, std::set<std::string>& names, std::string name)
    : store_(std::move(store)), names_(names), name_(std::move(name)) {}

Store::Claim::~Claim() {
  const std::lock_guard lock(store_->names_mutex_);
  names_.erase(name_);
}

std::unique_ptr<Store::Claim> Store::claim(std::set<std::string>& names, const std::string& name) {
  // Called with names_mutex_ held.
  if (!names.insert(name).second) return nullptr;
  return std::make_unique<Claim>(shared_from_this(), names, name);
}

std::unique_ptr<Store::Claim> Store::claim_target(const std::string& name) {
  const std::lock_guard lock(names_mutex_);
  return claim(targets_, name);
}

std::unique_ptr<Store::Claim> Store::claim_watchdog(const std::string& wanted) {
  const std::lock_guard lock(names_mutex_);
  if (!wanted.empty()) return claim(watchdogs_, wanted);
  for (int n = 1;; ++n) {
    const std::string name = n == 1 ? "watchdog" : "watchdog-" + std::to_string(n);
    if (!watchdogs_.contains(name)) return claim(watchdogs_, name);
  }
}

}  // namespace pgwd
