#pragma once

#include <memory>
#include <string>

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace pgwd::daemon {

/// `/metrics` over HTTP. Scrapes are served by civetweb's own threads straight from the registry
/// (thread-safe), so a scrape never waits on the event loop or on the database.
class MetricsEndpoint {
 public:
  /// Throws ConfigError naming the address if it cannot be bound (in use, not local, bad name).
  MetricsEndpoint(const std::string& listen, const std::shared_ptr<prometheus::Registry>& registry);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  /// The port actually bound (useful with port 0).
  int port() const;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace pgwd::daemon
