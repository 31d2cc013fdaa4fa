#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "metrics/series.hpp"
#include "pgwd/series_store.hpp"

namespace pgwd {

class Store;

/// A row's place in its store: withdraws the row when destroyed. The row itself is freed when
/// the last scrape that holds it lets go.
class RowHandle {
 public:
  RowHandle() = default;
  RowHandle(std::shared_ptr<Store> store, std::list<std::shared_ptr<const Row>>::iterator place);
  RowHandle(RowHandle&& other) noexcept;
  RowHandle& operator=(RowHandle&& other) noexcept;
  ~RowHandle();

 private:
  void withdraw() noexcept;

  std::shared_ptr<Store> store_;
  std::list<std::shared_ptr<const Row>>::iterator place_;
};

/// The SeriesStore: every row of series of the watchdogs (and their pools) that share it, and
/// the names in use among them (targets, and the watchdogs' own, which label their loop's
/// series), so that two of them never write each other's series. Thread-safe: rows are
/// published and withdrawn under a mutex held for a list insertion or erasure; a scrape holds it
/// only to copy the row pointers, and reads the values (atomics) without it. Publishing and
/// withdrawing a row are O(1), a scrape O(series).
class Store final : public SeriesStore, public std::enable_shared_from_this<Store> {
 public:
  /// Releases its name when destroyed.
  class Claim {
   public:
    Claim(std::shared_ptr<Store> store, std::set<std::string>& names, std::string name);
    ~Claim();
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    const std::string& name() const noexcept { return name_; }

   private:
    std::shared_ptr<Store> store_;
    std::set<std::string>& names_;
    std::string name_;
  };

  /// Made only by make_series_store() (it must be owned by a shared_ptr).
  Store();
  static Store& of(SeriesStore& store) noexcept { return static_cast<Store&>(store); }
  static const Store& of(const SeriesStore& store) noexcept {
    return static_cast<const Store&>(store);
  }

  /// Seals `row` and adds it: the next scrape sees it.
  RowHandle publish(std::shared_ptr<Row> row);
  /// The rows as of now, in the order published.
  std::vector<std::shared_ptr<const Row>> snapshot() const;
  void append_text(std::string& out) const override;

  /// Empty if another target on this store has that name.
  std::unique_ptr<Claim> claim_target(const std::string& name);
  /// A watchdog's name: `wanted`, or if empty the first free of "watchdog", "watchdog-2", ...
  /// Empty if `wanted` is taken.
  std::unique_ptr<Claim> claim_watchdog(const std::string& wanted);

 private:
  friend class RowHandle;
  using Rows = std::list<std::shared_ptr<const Row>>;  // a list: erasing is O(1) anywhere

  void withdraw(Rows::iterator place) noexcept;
  std::unique_ptr<Claim> claim(std::set<std::string>& names, const std::string& name);

  mutable std::mutex rows_mutex_;
  Rows rows_;
  std::mutex names_mutex_;
  std::set<std::string> targets_;
  std::set<std::string> watchdogs_;
  // make_series_store() adds pgwatchdog_build_info's row, which is never withdrawn.
  friend std::shared_ptr<SeriesStore> make_series_store();
};

}  // namespace pgwd
