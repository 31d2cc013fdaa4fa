#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/store.hpp"

namespace pgwd {

/// The series of the connections lent (pgwd/lending.hpp) under one target name: how many are
/// lent, their probes and notifications, server-lost alerts, and deaths and take-backs by cause
/// and verdict (those made when first seen, each in a row of its own). All go with it. Not
/// thread-safe: the lending ledger calls it under its mutex.
class LentSeries {
 public:
  LentSeries(Store& store, std::string target);
  LentSeries(const LentSeries&) = delete;
  LentSeries& operator=(const LentSeries&) = delete;

  Gauge& lent() noexcept { return lent_; }
  Counter& probes() noexcept { return probes_; }
  Counter& notifications() noexcept { return notifications_; }
  Counter& server_lost() noexcept { return server_lost_; }
  Counter& death(std::string_view cause);
  Counter& take_back(std::string_view verdict);

 private:
  Counter& labelled(std::map<std::string, Counter, std::less<>>& series, const Family& family,
                    std::string_view label, std::string_view value);

  Store& store_;
  std::string target_;
  Gauge lent_;
  Counter probes_;
  Counter notifications_;
  Counter server_lost_;
  std::map<std::string, Counter, std::less<>> deaths_;      ///< by cause
  std::map<std::string, Counter, std::less<>> take_backs_;  ///< by verdict
  RowHandle row_;
  std::vector<RowHandle> late_rows_;
};

}  // namespace pgwd
