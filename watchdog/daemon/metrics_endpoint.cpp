#include "daemon/metrics_endpoint.hpp"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "daemon/config.hpp"

namespace pgwd::daemon {

MetricsEndpoint::MetricsEndpoint(const std::string& listen,
                                 const std::shared_ptr<prometheus::Registry>& registry) {
  check_listen_address(listen);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception&) {
    // civetweb only says "null context when constructing CivetServer"; the usual reason is this
    // one.
    throw ConfigError("listen: cannot listen on " + listen +
                      " (address in use, or not an address of this host)");
  }
  exposer_->RegisterCollectable(registry, "/metrics");
}

MetricsEndpoint::~MetricsEndpoint() = default;

int MetricsEndpoint::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace pgwd::daemon
