#include "daemon/patroni/cluster_series.hpp"

#include "metrics/families.hpp"

namespace pgwd::daemon {

std::string_view to_string(DiscoveryError reason) {
  switch (reason) {
    case DiscoveryError::unreachable:
      return "unreachable";
    case DiscoveryError::http_status:
      return "http_status";
    case DiscoveryError::malformed:
      return "malformed";
    case DiscoveryError::member_refused:
      return "member_refused";
  }
  return "unknown";
}

ClusterSeries::ClusterSeries(Store& store, const std::string& cluster)
    : store_(store), cluster_(cluster) {
  auto row = std::make_shared<Row>(std::vector<Label>{{"cluster", cluster}});
  discovery_up_ = row->gauge(families::patroni_discovery_up);
  // Every reason from the start, with zeros: an alert on rate() needs the series before the
  // first error.
  for (const auto reason : {DiscoveryError::unreachable, DiscoveryError::http_status,
                            DiscoveryError::malformed, DiscoveryError::member_refused})
    errors_[static_cast<int>(reason)] =
        row->counter(families::patroni_discovery_errors, "reason", std::string(to_string(reason)));
  members_ = row->gauge(families::patroni_members);
  primaries_ = row->gauge(families::patroni_primaries);
  row_ = store_.publish(std::move(row));
}

void ClusterSeries::error(DiscoveryError reason) {
  errors_[static_cast<int>(reason)].increment();
}

void ClusterSeries::leader(const std::string& member) {
  if (member == leader_) return;
  leader_ = member;
  leader_row_ = RowHandle();  // the old leader's series goes before the new one's appears
  if (member.empty()) return;
  auto row = std::make_shared<Row>(std::vector<Label>{{"cluster", cluster_}, {"member", member}});
  row->gauge(families::patroni_leader).set(1);
  leader_row_ = store_.publish(std::move(row));
}

}  // namespace pgwd::daemon
