// Names of the public enums as they appear in metrics labels, logs and events (docs/metrics.md).
#include "pgwd/connection_state.hpp"
#include "pgwd/events.hpp"
#include "pgwd/lending.hpp"
#include "pgwd/target_options.hpp"

namespace pgwd {

std::string_view to_string(ConnectionState state) noexcept {
  switch (state) {
    case ConnectionState::waiting:
      return "waiting";
    case ConnectionState::resolving:
      return "resolving";
    case ConnectionState::connecting:
      return "connecting";
    case ConnectionState::healthy:
      return "healthy";
    case ConnectionState::inspecting:
      return "inspecting";
    case ConnectionState::probing:
      return "probing";
    case ConnectionState::down:
      return "down";
    case ConnectionState::backoff:
      return "backoff";
    case ConnectionState::stopped:
      return "stopped";
  }
  return "unknown";
}

std::string_view to_string(Cause cause) noexcept {
  switch (cause) {
    case Cause::server_shutdown:
      return "server_shutdown";
    case Cause::immediate_shutdown:
      return "immediate_shutdown";
    case Cause::server_crash:
      return "server_crash";
    case Cause::cannot_connect_now:
      return "cannot_connect_now";
    case Cause::idle_session_timeout:
      return "idle_session_timeout";
    case Cause::server_error:
      return "server_error";
    case Cause::pooler_server_lost:
      return "pooler_server_lost";
    case Cause::pooler_login_failing:
      return "pooler_login_failing";
    case Cause::pooler_queue_timeout:
      return "pooler_queue_timeout";
    case Cause::closed:
      return "closed";
    case Cause::timed_out:
      return "timed_out";
    case Cause::probe_failed:
      return "probe_failed";
    case Cause::probe_timeout:
      return "probe_timeout";
    case Cause::dns:
      return "dns";
    case Cause::connect_timeout:
      return "connect_timeout";
    case Cause::auth_failed:
      return "auth_failed";
    case Cause::database_missing:
      return "database_missing";
    case Cause::too_many_clients:
      return "too_many_clients";
    case Cause::connect_failed:
      return "connect_failed";
    case Cause::wrong_role:
      return "wrong_role";
  }
  return "unknown";
}

std::string_view to_string(ProbeResult result) noexcept {
  switch (result) {
    case ProbeResult::ok:
      return "ok";
    case ProbeResult::error:
      return "error";
    case ProbeResult::timeout:
      return "timeout";
  }
  return "unknown";
}

std::string_view to_string(LoanVerdict verdict) noexcept {
  switch (verdict) {
    case LoanVerdict::alive:
      return "alive";
    case LoanVerdict::dead:
      return "dead";
    case LoanVerdict::busy:
      return "busy";
    case LoanVerdict::watchdog_stopped:
      return "watchdog_stopped";
  }
  return "unknown";
}

std::string_view to_string(ServerChange change) noexcept {
  switch (change) {
    case ServerChange::restart:
      return "restart";
    case ServerChange::other_server:
      return "other_server";
  }
  return "unknown";
}

std::string_view to_string(Pooler pooler) noexcept {
  switch (pooler) {
    case Pooler::none:
      return "none";
    case Pooler::pgbouncer:
      return "pgbouncer";
  }
  return "none";
}

std::optional<Pooler> parse_pooler(std::string_view name) noexcept {
  for (const Pooler pooler : {Pooler::none, Pooler::pgbouncer})
    if (name == to_string(pooler)) return pooler;
  return std::nullopt;
}

}  // namespace pgwd
