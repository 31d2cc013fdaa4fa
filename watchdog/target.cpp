#include "target.hpp"

#include <fmt/chrono.h>
#include <fmt/ranges.h>

#include "pg/pg_link.hpp"

namespace pgwd {
namespace {

std::string with_sqlstate(Cause cause, const std::string& sqlstate) {
  return sqlstate.empty() ? std::string(to_string(cause))
                          : fmt::format("{} ({})", to_string(cause), sqlstate);
}

std::chrono::milliseconds ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

}  // namespace

Target::Target(const TargetOptions& options, TargetSettings settings, Loop& loop,
               Resolver& resolver, Connector& connector, ActivityNotes& notes, Random& random,
               AttemptGate& gate, Store& store, std::unique_ptr<Store::Claim> name,
               Observer* observer, spdlog::logger& log, const LoopHistograms* shared_histograms,
               AlertFront alert_front)
    : name_(options.name),
      in_front_of_(options.in_front_of),
      settings_(std::move(settings)),
      observer_(observer),
      log_(log),
      claim_(std::move(name)),
      metrics_(std::make_unique<TargetSeries>(store, name_, shared_histograms,
                                              options.pooler != Pooler::none)),
      per_connection_(static_cast<std::size_t>(options.connections)),
      alert_front_(std::move(alert_front)),
      heartbeat_(loop, random, settings_.lifecycle.heartbeat,
                 static_cast<std::size_t>(options.connections),
                 [this](std::size_t i) { return connections_[i]->heartbeat(); }),
      scout_(loop, random, settings_.scout_interval, settings_.scout_spread,
             static_cast<std::size_t>(options.connections),
             {.state = [this](std::size_t i) { return connections_[i]->state(); },
              .lasting =
                  [this](std::size_t i) {
                    const auto& failure = per_connection_[i].last_failure;
                    return failure == Cause::auth_failed || failure == Cause::database_missing;
                  },
              .retry_within = [this](std::size_t i,
                                     Nanos delay) { connections_[i]->retry_within(delay); },
              .hedge =
                  [this](std::size_t i, Nanos older_than) {
                    if (!connections_[i]->hedge(older_than) || !metrics_) return;
                    metrics_->hedged();
                    log_.debug("{}[{}] connect attempt still on its way: a second one beside it",
                               name_, i);
                  }}),
      front_probe_(loop.make_timer([this] { heartbeat_.beat_now(); })) {
  const WatchedConnection::LinkFactory make_link = [&](LinkCallbacks& callbacks,
                                                       const ConnectionRef& who) {
    return std::make_unique<PgLink>(settings_.link, loop, resolver, connector, notes, who,
                                    callbacks);
  };
  ConnectionEvents& events = *this;
  for (int i = 0; i < options.connections; ++i) {
    connections_.push_back(std::make_unique<WatchedConnection>(
        ConnectionRef{name_, i}, settings_.lifecycle, loop, random, events, make_link, &gate));
    metrics_->connection_moved(std::nullopt, connections_.back()->state());  // waiting
  }
}

template <typename Event>
void Target::tell(void (Observer::*method)(const Event&), const Event& event) {
  if (!observer_) return;
  try {
    (observer_->*method)(event);
  } catch (const std::exception& e) {
    log_.error("{}[{}] the observer threw from a callback (ignored): {}", name_,
               event.connection.index, e.what());
  } catch (...) {
    log_.error("{}[{}] the observer threw from a callback (ignored)", name_,
               event.connection.index);
  }
}

Target::~Target() {
  retire();
  connections_.clear();  // closes them; retired, so they report nothing
}

void Target::start() {
  std::vector<std::string> hosts;
  for (const HostEntry& host : settings_.link.hosts) hosts.push_back(host.label());
  log_.info("target {}: watching {} connection(s) to {} ({})", name_, connections_.size(),
            fmt::join(hosts, ", "), settings_.link.conninfo.redacted());
  for (auto& c : connections_) c->start();
  heartbeat_.start();
}

void Target::silence() {
  if (!metrics_) return;
  metrics_.reset();
  claim_.reset();
  observer_ = nullptr;
  heartbeat_.stop();
  scout_.stop();
  front_probe_->disarm();
}

void Target::retire() {
  silence();
  for (auto& c : connections_)
    c->stop();  // each one at most once: stop() of a stopped one is a no-op
}

std::vector<ConnectionState> Target::states() const {
  std::vector<ConnectionState> out;
  for (const auto& c : connections_) out.push_back(c->state());
  return out;
}

void Target::probe_soon() {
  if (metrics_) front_probe_->arm(Nanos::zero());
}

void Target::on_state_change(const StateChangeEvent& e) {
  if (!metrics_) return;
  metrics_->connection_moved(e.from, e.to);
  log_.trace("{}[{}] {} -> {}", name_, e.connection.index, to_string(e.from), to_string(e.to));
  tell(&Observer::on_state_change, e);
}

void Target::on_healthy(const HealthyEvent& e) {
  if (!metrics_) return;
  auto& pc = per_connection_[static_cast<std::size_t>(e.connection.index)];
  if (pc.reconnecting) metrics_->reconnect(true);
  pc.reconnecting = false;
  pc.last_failure.reset();
  metrics_->in_hot_standby(e.server.in_hot_standby == "on");
  scout_.back();  // the server answers: the siblings waiting out a backoff come back now
  if (e.outage) {
    metrics_->outage(*e.outage);
    log_.info("{}[{}] healthy again after {} on {} (attempt {}, backend pid {})", name_,
              e.connection.index, ms(*e.outage), e.server.host, e.attempt, e.server.backend_pid);
  } else {
    log_.info("{}[{}] connected to {} (backend pid {}, server {}{})", name_, e.connection.index,
              e.server.host, e.server.backend_pid, e.server.server_version,
              e.server.in_hot_standby == "on" ? ", hot standby" : "");
  }
  tell(&Observer::on_healthy, e);
  // A pooled connection back after an outage is where a restart behind the pool shows in
  // session pooling, and in transaction pooling when a heartbeat fell into the restart.
  if (metrics_) compare_server(e.connection, e.server);
}

void Target::on_down(const DownEvent& e) {
  if (!metrics_) return;
  metrics_->disconnected(e.cause);
  // with_sqlstate formats before spdlog checks the level: a fifth of the CPU on the way to
  // on_down when warnings are not logged (bench/README.md "Current figures").
  if (log_.should_log(spdlog::level::warn))
    log_.warn("{}[{}] down: {}: {}", name_, e.connection.index, with_sqlstate(e.cause, e.sqlstate),
              e.message);
  // The siblings are left alone. A single backend's end (pg_terminate_backend, an idle-session
  // timeout) says nothing about them, and a server-wide end reaches each of their sockets on its
  // own, where the loop reports it: a quiet sibling is already an answer. Probing them cost N-1
  // statements per terminate; after a kernel timeout a probe even delayed their own detection
  // (Linux suspends keepalive while data is unacknowledged).
  scout_.lost();
  if (alert_front_) alert_front_(name_);
  tell(&Observer::on_down, e);
}

void Target::on_reconnect_attempt(const ReconnectAttemptEvent& e) {
  if (!metrics_) return;
  per_connection_[static_cast<std::size_t>(e.connection.index)].reconnecting = true;
  log_.debug("{}[{}] reconnect attempt {}", name_, e.connection.index, e.attempt);
  tell(&Observer::on_reconnect_attempt, e);
}

void Target::on_connect_failed(const ConnectFailedEvent& e) {
  if (!metrics_) return;
  auto& pc = per_connection_[static_cast<std::size_t>(e.connection.index)];
  if (pc.reconnecting) metrics_->reconnect(false);
  metrics_->connect_failed(e.cause);
  pc.reconnecting = false;
  // The first failure of a kind is a warning; the same failure again is only debug, so a target
  // that stays down does not flood the log (the metrics still count every attempt).
  const auto level = pc.last_failure == e.cause ? spdlog::level::debug : spdlog::level::warn;
  pc.last_failure = e.cause;
  log_.log(level, "{}[{}] connect attempt {} failed: {}: {}; next attempt in {}", name_,
           e.connection.index, e.attempt, with_sqlstate(e.cause, e.sqlstate), e.message,
           ms(e.retry_in));
  scout_.lost();
  tell(&Observer::on_connect_failed, e);
}

void Target::on_probe(const ProbeEvent& e) {
  if (!metrics_) return;
  metrics_->probed(e.result, e.duration);
  log_.debug("{}[{}] probe {} in {}", name_, e.connection.index, to_string(e.result),
             std::chrono::duration_cast<std::chrono::microseconds>(e.duration));
  tell(&Observer::on_probe, e);
}

void Target::on_notification(const NotificationEvent& e) {
  if (!metrics_) return;
  metrics_->notification();
  log_.debug("{}[{}] NOTIFY on \"{}\" from pid {}", name_, e.connection.index, e.channel,
             e.sender_pid);
  tell(&Observer::on_notification, e);
}

void Target::on_notice(const NoticeEvent& e) {
  if (!metrics_) return;
  metrics_->notice();
  log_.info("{}[{}] server {}{}: {}", name_, e.connection.index, e.severity,
            e.sqlstate.empty() ? "" : " " + e.sqlstate, e.message);
  tell(&Observer::on_notice, e);
}

void Target::on_role_change(const RoleChangeEvent& e) {
  if (!metrics_) return;
  metrics_->in_hot_standby(e.in_hot_standby == "on");
  log_.warn("{}[{}] server changed role: in_hot_standby {} -> {}", name_, e.connection.index,
            e.previous, e.in_hot_standby);
  if (alert_front_) alert_front_(name_);
  tell(&Observer::on_role_change, e);
}

void Target::on_server_refreshed(const ConnectionRef& c, const ServerInfo& server) {
  if (metrics_) compare_server(c, server);
}

void Target::compare_server(const ConnectionRef& c, const ServerInfo& server) {
  const std::optional<ServerChange> change = server_behind_.saw(server);
  if (!change) return;
  const ServerInfo& previous = server_behind_.previous();
  metrics_->server_changed(*change);
  if (*change == ServerChange::restart)
    log_.warn("{}[{}] the server behind the pooler restarted: {} started at {}, before at {}",
              name_, c.index, server.server_address, server.server_started,
              previous.server_started);
  else
    log_.warn("{}[{}] another server answers behind the pooler: {} (in_hot_standby {}), before {}",
              name_, c.index, server.server_address, server.in_hot_standby,
              previous.server_address);
  tell(&Observer::on_server_change, ServerChangeEvent{c, *change, previous, server});
}

void Target::on_wakeup(const ConnectionRef& c) {
  if (!metrics_) return;
  metrics_->wakeup();
  log_.debug("{}[{}] activity on idle connection", name_, c.index);
}

}  // namespace pgwd
