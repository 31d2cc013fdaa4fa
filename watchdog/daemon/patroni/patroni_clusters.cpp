#include "daemon/patroni/patroni_clusters.hpp"

#include "daemon/status_board.hpp"
#include "pgwd/version.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {

PatroniClusters::PatroniClusters(Loop& loop, Watchdog& watchdog, StatusBoard& board, Store& store,
                                 std::shared_ptr<spdlog::logger> log,
                                 std::function<void()> members_changed)
    : loop_(loop),
      watchdog_(watchdog),
      board_(board),
      store_(store),
      log_(std::move(log)),
      members_changed_(std::move(members_changed)),
      fetcher_(loop, std::string("pgwatchdog/") + std::string(kVersion)) {}

PatroniClusters::~PatroniClusters() {
  notify_ = false;  // the daemon is going: nobody needs the board refreshed
  clusters_.clear();
}

void PatroniClusters::set_clusters(const std::vector<PatroniCluster>& wanted) {
  notify_ = false;
  std::map<std::string, const PatroniCluster*, std::less<>> wanted_by_name;
  for (const PatroniCluster& c : wanted) wanted_by_name.emplace(c.name(), &c);
  std::erase_if(clusters_, [&](const auto& entry) {
    const auto found = wanted_by_name.find(entry.first);
    return found == wanted_by_name.end() || !(*found->second == entry.second->cluster());
  });
  for (const PatroniCluster& c : wanted)
    if (!clusters_.contains(c.name()))
      clusters_.emplace(c.name(), std::make_unique<ClusterWatch>(
                                      c, loop_, fetcher_, member_targets_view(), store_, log_));
  notify_ = true;
}

MemberTargets& PatroniClusters::member_targets_view() {
  return *this;  // the base is private: only the watches get this face of the daemon
}

std::vector<TargetOptions> PatroniClusters::member_targets() const {
  std::vector<TargetOptions> all;
  for (const auto& [name, watch] : clusters_)
    for (TargetOptions& t : watch->member_targets()) all.push_back(std::move(t));
  return all;
}

void PatroniClusters::add(const TargetOptions& target) {
  watchdog_.add_target(target);
  if (notify_) members_changed_();
}

void PatroniClusters::remove(const std::vector<std::string>& names) {
  watchdog_.remove_targets(names);
  if (notify_) members_changed_();
}

bool PatroniClusters::answers_as_primary(const std::string& name) const {
  const auto status = board_.copy_of(name);
  return status && status->role() == ServerRole::primary;
}

}  // namespace pgwd::daemon
