#include "daemon/status_board.hpp"

#include <algorithm>
#include <unordered_map>

namespace pgwd::daemon {

std::string_view to_string(TargetState state) {
  switch (state) {
    case TargetState::up: return "up";
    case TargetState::down: return "down";
    case TargetState::pending: return "pending";
  }
  return "unknown";
}

std::string_view to_string(ServerRole role) {
  switch (role) {
    case ServerRole::primary: return "primary";
    case ServerRole::standby: return "standby";
    case ServerRole::unknown: return "unknown";
  }
  return "unknown";
}

bool TargetStatus::up() const {
  return std::any_of(connections.begin(), connections.end(), [](ConnectionState s) {
    return s == ConnectionState::healthy || s == ConnectionState::inspecting ||
           s == ConnectionState::probing;
  });
}

TargetState TargetStatus::state() const {
  if (up()) return TargetState::up;
  return attempted ? TargetState::down : TargetState::pending;
}

ServerRole TargetStatus::role() const {
  if (!up()) return ServerRole::unknown;
  if (in_hot_standby == "off") return ServerRole::primary;
  if (in_hot_standby == "on") return ServerRole::standby;
  return ServerRole::unknown;
}

std::size_t TargetStatus::count(ConnectionState state) const {
  return static_cast<std::size_t>(std::count(connections.begin(), connections.end(), state));
}

StatusBoard::StatusBoard(HealthState& health) : health_(health) {}

void StatusBoard::set_targets(const std::vector<TargetOptions>& targets) {
  const auto now = std::chrono::steady_clock::now();
  const std::lock_guard lock(mutex_);
  std::vector<TargetStatus> next;
  next.reserve(targets.size());
  std::unordered_map<std::string, std::size_t> next_index;
  next_index.reserve(targets.size());
  std::size_t unattempted = 0;
  std::size_t up = 0;
  for (const TargetOptions& options : targets) {
    TargetStatus status;
    if (TargetStatus* old = find(options.name)) status = std::move(*old);
    status.name = options.name;
    // A restarted target (changed settings) starts its connections afresh.
    const auto count = static_cast<std::size_t>(std::max(options.connections, 1));
    if (status.connections.size() != count)
      status.connections.assign(count, ConnectionState::waiting);
    if (!status.up() && !status.down_since) status.down_since = now;
    if (!status.attempted) ++unattempted;
    if (status.up()) ++up;
    next_index.emplace(options.name, next.size());
    next.push_back(std::move(status));
  }
  targets_ = std::move(next);
  index_ = std::move(next_index);
  unattempted_ = unattempted;
  up_ = up;
  if (unattempted_ == 0 && !readiness_latched_) {
    readiness_latched_ = true;
    health_.set_every_target_attempted();
  }
}

std::vector<TargetStatus> StatusBoard::snapshot() const {
  const std::lock_guard lock(mutex_);
  return targets_;
}

std::optional<TargetStatus> StatusBoard::copy_of(std::string_view name) const {
  const std::lock_guard lock(mutex_);
  const auto it = index_.find(std::string(name));
  if (it == index_.end()) return std::nullopt;
  return targets_[it->second];
}

StatusBoard::UpCount StatusBoard::up_count() const {
  const std::lock_guard lock(mutex_);
  return UpCount{.up = up_, .total = targets_.size()};
}

TargetStatus* StatusBoard::find(const std::string& name) {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &targets_[it->second];
}

void StatusBoard::attempted(TargetStatus& target) {
  if (target.attempted) return;
  target.attempted = true;
  if (unattempted_ > 0 && --unattempted_ == 0 && !readiness_latched_) {
    readiness_latched_ = true;
    health_.set_every_target_attempted();
  }
}

void StatusBoard::on_healthy(const HealthyEvent& event) {
  const std::lock_guard lock(mutex_);
  if (TargetStatus* target = find(event.connection.target)) {
    attempted(*target);
    if (!event.server.in_hot_standby.empty()) target->in_hot_standby = event.server.in_hot_standby;
  }
}

void StatusBoard::on_down(const DownEvent& event) {
  const std::lock_guard lock(mutex_);
  if (TargetStatus* target = find(event.connection.target)) {
    target->last_disconnect = event.cause;
    target->last_disconnect_sqlstate = event.sqlstate;
    target->last_disconnect_at = std::chrono::system_clock::now();
  }
}

void StatusBoard::on_connect_failed(const ConnectFailedEvent& event) {
  const std::lock_guard lock(mutex_);
  if (TargetStatus* target = find(event.connection.target)) {
    attempted(*target);
    target->last_connect_failure = event.cause;
    target->last_connect_failure_at = std::chrono::system_clock::now();
  }
}

void StatusBoard::on_role_change(const RoleChangeEvent& event) {
  const std::lock_guard lock(mutex_);
  if (TargetStatus* target = find(event.connection.target))
    target->in_hot_standby = event.in_hot_standby;
}

// Another server answers behind a pooler or a moved host name: its role is the target's now.
void StatusBoard::on_server_change(const ServerChangeEvent& event) {
  const std::lock_guard lock(mutex_);
  if (TargetStatus* target = find(event.connection.target))
    if (!event.now.in_hot_standby.empty()) target->in_hot_standby = event.now.in_hot_standby;
}

void StatusBoard::on_state_change(const StateChangeEvent& event) {
  const std::lock_guard lock(mutex_);
  TargetStatus* target = find(event.connection.target);
  if (!target || event.connection.index < 0) return;
  const auto index = static_cast<std::size_t>(event.connection.index);
  if (index >= target->connections.size()) target->connections.resize(index + 1);
  const bool was_up = target->up();
  target->connections[index] = event.to;
  const bool is_up = target->up();
  if (was_up && !is_up) {
    target->down_since = std::chrono::steady_clock::now();
    // The role is the server's, and the target may come back to another one (a failover): it
    // is unknown until a connection is healthy again and says (on_healthy comes after the state
    // change, so between the two the target is up with its role unknown, never a stale one).
    target->in_hot_standby.clear();
    --up_;
  }
  if (is_up) {
    target->down_since.reset();
    if (!was_up) ++up_;
  }
}

}  // namespace pgwd::daemon
