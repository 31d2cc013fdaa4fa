#include "daemon/http_routes.hpp"

#include <fmt/format.h>

#include <atomic>

#include "daemon/status_page.hpp"
#include "daemon/target_endpoints.hpp"
#include "pgwd/version.hpp"

namespace pgwd::daemon {
namespace {

constexpr std::string_view kText = "text/plain; charset=utf-8";

HttpReply healthy(const HealthState& health) {
  const auto silent = health.since_last_beat(std::chrono::steady_clock::now());
  if (silent < HealthState::kStallThreshold) return {200, std::string(kText), "healthy\n"};
  return {503, std::string(kText),
          fmt::format("event loop stalled: no heartbeat for {} ms (threshold {} ms)\n",
                      std::chrono::duration_cast<std::chrono::milliseconds>(silent).count(),
                      HealthState::kStallThreshold.count())};
}

HttpReply ready(const HealthState& health) {
  if (health.ready()) return {200, std::string(kText), "ready\n"};
  std::string why = "not ready:";
  if (!health.config_loaded()) why += " configuration not loaded;";
  if (!health.listening()) why += " listener not up;";
  if (!health.every_target_attempted()) why += " not every target has made its first attempt;";
  why.back() = '\n';
  return {503, std::string(kText), why};
}

// The store in the text format, written straight into the body, which is reserved at the last
// scrape's size plus some room for new series, so that writing megabytes never reallocates and
// copies.
HttpReply metrics(const SeriesStore& store, std::atomic<std::size_t>& last_size) {
  HttpReply reply{200, "text/plain; version=0.0.4; charset=utf-8", {}};
  const std::size_t hint = last_size.load(std::memory_order_relaxed);
  reply.body.reserve(hint + hint / 8 + 4096);
  store.append_text(reply.body);
  last_size.store(reply.body.size(), std::memory_order_relaxed);
  return reply;
}

}  // namespace

bool is_health_check(std::string_view path) {
  return path == "/-/healthy" || path == "/-/ready" || parse_target_path(path).has_value();
}

HttpHandler daemon_routes(std::shared_ptr<const SeriesStore> store, const HealthState& health,
                          const StatusBoard& board) {
  // Shared by the server's threads, and by copies of the handler.
  auto last_size = std::make_shared<std::atomic<std::size_t>>(0);
  return [store = std::move(store), last_size, &health,
          &board](std::string_view path) -> HttpReply {
    if (path == "/metrics") return metrics(*store, *last_size);
    if (path == "/-/healthy") return healthy(health);
    if (path == "/-/ready") return ready(health);
    if (const auto target = parse_target_path(path))
      return answer_target_check(board.copy_of(target->name), *target,
                                 std::chrono::system_clock::now(), std::chrono::steady_clock::now());
    if (path == "/api/v1/targets")
      return {200, "application/json",
              render_targets_json(board.snapshot(), std::chrono::system_clock::now(),
                                  std::chrono::steady_clock::now())};
    if (path == "/")
      return {200, "text/html; charset=utf-8",
              render_status_page(board.snapshot(), kVersion, std::chrono::system_clock::now(),
                                 std::chrono::steady_clock::now())};
    return {404, std::string(kText),
            "not found: try /metrics, /-/healthy, /-/ready, /, /api/v1/targets or "
            "/targets/<name>/primary|replica|up\n"};
  };
}

}  // namespace pgwd::daemon
