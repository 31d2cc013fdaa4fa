#include "health/server_identity_watch.hpp"

namespace pgwd {

std::optional<ServerChange> ServerIdentityWatch::saw(const ServerInfo& server) {
  if (server.server_address.empty() && server.server_started.empty()) return std::nullopt;
  if (!last_) {
    last_ = server;
    return std::nullopt;
  }
  std::optional<ServerChange> change;
  if (server.server_address != last_->server_address)
    change = ServerChange::other_server;
  else if (server.server_started != last_->server_started)
    change = ServerChange::restart;
  if (change) previous_ = *last_;
  last_ = server;
  return change;
}

}  // namespace pgwd
