#include "daemon/patroni/cluster_watch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "daemon/file_reading.hpp"
#include "daemon/patroni/member_target.hpp"
#include "daemon/patroni/membership_diff.hpp"

namespace pgwd::daemon {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

ClusterWatch::ClusterWatch(PatroniCluster cluster, Loop& loop, AnswerSource& source,
                           MemberTargets& targets, Store& store,
                           std::shared_ptr<spdlog::logger> log)
    : cluster_(std::move(cluster)),
      loop_(loop),
      source_(source),
      targets_(targets),
      log_(std::move(log)),
      series_(store, cluster_.name()) {
  next_reading_ = loop_.make_timer([this] { start_reading(); });
  role_check_ = loop_.make_timer([this] {
    role_check_->arm(kRoleCheckInterval);
    check_roles();
  });
  next_reading_->arm(Nanos::zero());  // from the loop: the constructor calls nobody back
  role_check_->arm(kRoleCheckInterval);
}

ClusterWatch::~ClusterWatch() {
  fetch_.reset();
  std::vector<std::string> names;
  for (const PatroniMember& m : watched_)
    names.push_back(member_target_name(cluster_.name(), m.name));
  if (!names.empty()) targets_.remove(names);
}

std::vector<TargetOptions> ClusterWatch::member_targets() const {
  std::vector<TargetOptions> out;
  out.reserve(watched_.size());
  for (const PatroniMember& m : watched_) out.push_back(member_target(cluster_, m));
  return out;
}

void ClusterWatch::start_reading() {
  reading_started_ = loop_.now();
  ask(0);
}

void ClusterWatch::ask(std::size_t endpoint) {
  const std::string url = cluster_.rest_api.at(endpoint) + "/cluster";
  const auto timeout = std::min(cluster_.discovery_interval, kMaxRequestTime);
  try {
    fetch_ = source_.get(url, timeout, [this, endpoint](FetchResult result) {
      answered(endpoint, std::move(result));
    });
  } catch (const std::exception& e) {
    failed(endpoint, DiscoveryError::unreachable, e.what());
  }
}

void ClusterWatch::answered(std::size_t endpoint, FetchResult result) {
  fetch_.reset();  // finished: AnswerSource lets its callback destroy it
  if (!result.error.empty()) return failed(endpoint, DiscoveryError::unreachable, result.error);
  if (result.status != 200)
    return failed(endpoint, DiscoveryError::http_status,
                  fmt::format("HTTP status {} (expected 200)", result.status));
  ClusterAnswer answer;
  try {
    answer = parse_cluster_answer(result.body);
  } catch (const MalformedAnswer& e) {
    return failed(endpoint, DiscoveryError::malformed, e.what());
  }
  series_.discovered(true);
  if (failing_)
    log_->info("Patroni cluster '{}': members read again from {}", cluster_.name(),
               cluster_.rest_api[endpoint]);
  failing_ = false;
  apply(answer);
  reading_done();
}

void ClusterWatch::failed(std::size_t endpoint, DiscoveryError reason, const std::string& why) {
  series_.error(reason);
  const std::string message = fmt::format("{}/cluster: {}: {}", cluster_.rest_api[endpoint],
                                          to_string(reason), escape_control_characters(why));
  // Each failure is told once while it lasts (an endpoint that stays down would otherwise
  // write a line per reading); the metric counts every one.
  if (contains(told_, message))
    log_->debug("Patroni cluster '{}': cannot read the members from {}", cluster_.name(), message);
  else
    log_->error("Patroni cluster '{}': cannot read the members from {}", cluster_.name(), message);
  failures_.push_back(message);
  if (endpoint + 1 < cluster_.rest_api.size()) return ask(endpoint + 1);
  series_.discovered(false);
  failing_ = true;
  log_->debug(
      "Patroni cluster '{}': no endpoint answered; still watching the {} member(s) "
      "last read",
      cluster_.name(), watched_.size());
  reading_done();
}

void ClusterWatch::reading_done() {
  // This reading's failures are told; the next reading says only what is new.
  told_ = std::exchange(failures_, {});
  const Nanos elapsed = loop_.now() - reading_started_;
  const Nanos interval = cluster_.discovery_interval;
  next_reading_->arm(elapsed < interval ? interval - elapsed : Nanos::zero());
}

void ClusterWatch::apply(const ClusterAnswer& answer) {
  const std::string& name = cluster_.name();
  if (answer.skipped != skipped_) {
    for (const std::string& why : answer.skipped)
      log_->warn("Patroni cluster '{}': {}: not watched", name, escape_control_characters(why));
    skipped_ = answer.skipped;
  }
  const MembershipChange change = diff_members(watched_, answer.members);
  std::vector<std::string> going;
  for (const std::string& member : change.removed) going.push_back(member);
  for (const PatroniMember& member : change.moved) going.push_back(member.name);
  if (!going.empty()) {
    std::vector<std::string> target_names;
    for (const std::string& member : going)
      target_names.push_back(member_target_name(name, member));
    // watched_ first: MemberTargets' calls may ask member_targets() for the new list.
    std::erase_if(watched_, [&](const PatroniMember& m) { return contains(going, m.name); });
    targets_.remove(target_names);
    for (const std::string& member : change.removed)
      log_->info("Patroni cluster '{}': member '{}' is no longer listed: stopped watching it", name,
                 member);
  }
  std::vector<PatroniMember> arriving = change.moved;
  arriving.insert(arriving.end(), change.added.begin(), change.added.end());
  for (const PatroniMember& member : arriving) {
    try {
      watched_.push_back(member);
      targets_.add(member_target(cluster_, member));
      std::erase(refused_, member.name);
      log_->info("Patroni cluster '{}': watching member '{}' at {}:{} ({})", name, member.name,
                 member.host, member.port, member.role.empty() ? "no role" : member.role);
    } catch (const std::exception& e) {
      watched_.pop_back();
      series_.error(DiscoveryError::member_refused);
      const std::string shown = escape_control_characters(member.name);
      if (contains(refused_, member.name))
        log_->debug("Patroni cluster '{}': member '{}' refused again: {}", name, shown, e.what());
      else
        log_->error("Patroni cluster '{}': member '{}' cannot be watched: {}", name, shown,
                    escape_control_characters(e.what()));
      if (!contains(refused_, member.name)) refused_.push_back(member.name);
    }
  }
  // Roles as Patroni says them now, for the members that stayed.
  for (PatroniMember& m : watched_)
    for (const PatroniMember& listed : answer.members)
      if (listed.name == m.name) m.role = listed.role;
  series_.members(watched_.size());
  const bool leader_watched = std::any_of(watched_.begin(), watched_.end(),
                                          [&](const auto& m) { return m.name == answer.leader; });
  const std::string leader = leader_watched ? answer.leader : std::string();
  if (leader != leader_) {
    if (leader.empty())
      log_->warn("Patroni cluster '{}': no leader listed (was '{}')", name, leader_);
    else if (leader_.empty())
      log_->info("Patroni cluster '{}': leader is '{}'", name, leader);
    else
      log_->warn("Patroni cluster '{}': leader is now '{}' (was '{}')", name, leader, leader_);
    leader_ = leader;
  }
  series_.leader(leader_);
}

void ClusterWatch::check_roles() {
  std::vector<std::string> primaries;
  for (const PatroniMember& m : watched_)
    if (targets_.answers_as_primary(member_target_name(cluster_.name(), m.name)))
      primaries.push_back(m.name);
  series_.primaries(primaries.size());
  if (primaries.size() >= 2 && primaries != primaries_)
    log_->error(
        "Patroni cluster '{}': {} members answer as primary at once: {} (Patroni's leader: "
        "'{}'); writes to the one that is not the leader will be lost when it is rewound",
        cluster_.name(), primaries.size(), fmt::join(primaries, ", "), leader_);
  else if (primaries.size() < 2 && primaries_.size() >= 2)
    log_->info("Patroni cluster '{}': {} member(s) answer as primary now", cluster_.name(),
               primaries.size());
  primaries_ = std::move(primaries);
}

}  // namespace pgwd::daemon
