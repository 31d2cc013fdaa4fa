#pragma once

#include <memory>

#include "daemon/health_state.hpp"
#include "daemon/http_server.hpp"
#include "daemon/status_board.hpp"
#include "pgwd/series_store.hpp"

namespace pgwd::daemon {

/// The daemon's pages: `/metrics` (the metrics store in the Prometheus text format),
/// `/-/healthy`, `/-/ready`, and the status page at `/`. Each reads only thread-safe state (the
/// store,
/// HealthState's atomics, a StatusBoard copy): none waits on the event loop or a database.
/// The objects must outlive the server.
HttpHandler daemon_routes(std::shared_ptr<const SeriesStore> metrics, const HealthState& health,
                          const StatusBoard& board);

}  // namespace pgwd::daemon
