#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "metrics/metric_families.hpp"

namespace pgwd {

/// What every Watchdog on one prometheus::Registry shares: the metric families, registered
/// once, and the names in use (targets, and the watchdogs' own names, which label their loop's
/// series). Two watchdogs on one registry (a thread per core, or the daemon and an embedded
/// one) therefore never write, or remove, each other's series. Thread-safe.
class RegistryShare : public std::enable_shared_from_this<RegistryShare> {
 public:
  /// Releases its name when destroyed.
  class Claim {
   public:
    Claim(std::shared_ptr<RegistryShare> share, std::set<std::string>& names, std::string name);
    ~Claim();
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    const std::string& name() const noexcept { return name_; }

   private:
    std::shared_ptr<RegistryShare> share_;
    std::set<std::string>& names_;
    std::string name_;
  };

  /// The share of `registry`, made on first use; it lives while a Watchdog holds it. Call
  /// claim_watchdog() on it next (the share counts the Watchdog as joining until then). Waits
  /// while the registry's share is closed (close_if_sole) for the few milliseconds until its
  /// Watchdog has dropped the families, then makes a fresh one.
  static std::shared_ptr<RegistryShare> of(const std::shared_ptr<prometheus::Registry>& registry);

  /// For a Watchdog that is going away: true if it is the only Watchdog on the share and none
  /// is joining. The share is then closed: no Watchdog joins it any more, and the caller
  /// must call drop_families() once nothing refers to a series, without having removed any
  /// (the series' owners check MetricFamilies::dropping()). Removing every series one by one costs
  /// O(series × family size): 71.5 s for 10,000 targets.
  bool close_if_sole();
  /// Removes every family from the registry (freeing their series with them), and lets the
  /// Watchdogs waiting in of() make a fresh share.
  void drop_families();

  explicit RegistryShare(std::shared_ptr<prometheus::Registry> registry);
  RegistryShare(const RegistryShare&) = delete;
  RegistryShare& operator=(const RegistryShare&) = delete;

  MetricFamilies& families() noexcept { return families_; }

  /// Empty if another target on this registry has that name.
  std::unique_ptr<Claim> claim_target(const std::string& name);
  /// A watchdog's name: `wanted`, or if empty the first free of "watchdog", "watchdog-2", ...
  /// Empty if `wanted` is taken.
  std::unique_ptr<Claim> claim_watchdog(const std::string& wanted);

 private:
  std::unique_ptr<Claim> claim(std::set<std::string>& names, const std::string& name);

  std::shared_ptr<prometheus::Registry> registry_;  // outlives the families
  MetricFamilies families_;
  std::mutex mutex_;
  std::set<std::string> targets_;
  std::set<std::string> watchdogs_;
  /// When the last Watchdog's name is released and none is joining, removes the families that
  /// are left (build_info and the empty ones). Why: two Watchdogs going away at once on two
  /// threads each see the other in close_if_sole(), so both remove only their own series and
  /// neither drops the families; the last one out does it here, after every series owner of its
  /// own is gone (the name is the last thing a Watchdog lets go of).
  void drop_if_abandoned();

  std::size_t joining_ = 0;  // of() handed the share out, claim_watchdog() not called yet
  bool closed_ = false;      // written holding of()'s mutex and mutex_, read holding either
  bool dropped_ = false;     // the families were removed from the registry (written holding both)
};

}  // namespace pgwd
