#include "daemon/target_text.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>

namespace pgwd::daemon {

std::string duration_text(std::chrono::nanoseconds elapsed) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  if (seconds < 1)
    return fmt::format("{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

std::string utc_text(std::chrono::system_clock::time_point at) {
  // fmt 9 (Debian 12) formats a time_point in local time: through gmtime, it is UTC whatever TZ.
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(at)));
}

std::string iso_utc_text(std::chrono::system_clock::time_point at) {
  const auto since_epoch = at.time_since_epoch();
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(at)),
                     milliseconds < 0 ? milliseconds + 1000 : milliseconds);
}

std::string connections_text(const TargetStatus& target) {
  constexpr std::array order = {ConnectionState::healthy,    ConnectionState::probing,
                                ConnectionState::inspecting, ConnectionState::connecting,
                                ConnectionState::resolving,  ConnectionState::waiting,
                                ConnectionState::backoff,    ConnectionState::down,
                                ConnectionState::stopped};
  std::string text;
  for (const ConnectionState state : order) {
    const std::size_t count = target.count(state);
    if (count == 0) continue;
    if (!text.empty()) text += ", ";
    text += fmt::format("{} {}", count, to_string(state));
  }
  return text;
}

std::optional<std::chrono::nanoseconds> outage(const TargetStatus& target,
                                               std::chrono::steady_clock::time_point now) {
  if (target.up() || !target.down_since) return std::nullopt;
  return now - *target.down_since;
}

std::optional<std::string> last_disconnect_text(const TargetStatus& target,
                                                std::chrono::system_clock::time_point now_wall) {
  if (!target.last_disconnect) return std::nullopt;
  std::string text(to_string(*target.last_disconnect));
  if (!target.last_disconnect_sqlstate.empty())
    text += " (" + target.last_disconnect_sqlstate + ")";
  text += " at " + utc_text(target.last_disconnect_at) + ", " +
          duration_text(now_wall - target.last_disconnect_at) + " ago";
  return text;
}

std::optional<std::string> last_connect_failure_text(
    const TargetStatus& target, std::chrono::system_clock::time_point now_wall) {
  if (!target.last_connect_failure) return std::nullopt;
  return std::string(to_string(*target.last_connect_failure)) + ", " +
         duration_text(now_wall - target.last_connect_failure_at) + " ago";
}

}  // namespace pgwd::daemon
