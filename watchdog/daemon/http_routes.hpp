#pragma once

#include <memory>

#include "daemon/health_state.hpp"
#include "daemon/http_server.hpp"
#include "daemon/status_board.hpp"
#include "pgwd/series_store.hpp"

namespace pgwd::daemon {

/// The daemon's pages: `/metrics` (the metrics store in the Prometheus text format),
/// `/-/healthy`, `/-/ready`, the status page at `/`, `/api/v1/targets` and the checks
/// `/targets/<name>/primary|replica|up` (target_endpoints.hpp). Each reads only thread-safe
/// state (the store, HealthState's atomics, a StatusBoard copy): none waits on the event loop or
/// a database. The objects must outlive the server.
HttpHandler daemon_routes(std::shared_ptr<const SeriesStore> metrics, const HealthState& health,
                          const StatusBoard& board);

/// The health checks `--web.health-without-auth` opens: `/-/healthy`, `/-/ready` and
/// `/targets/<name>/primary|replica|up` (200 or 503 and a line saying why), not `/metrics`, `/`
/// or `/api/v1/targets`.
bool is_health_check(std::string_view path);

}  // namespace pgwd::daemon
