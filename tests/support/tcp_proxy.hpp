#pragma once

/// \file
/// A throwaway HAProxy (Debian's haproxy) in `mode tcp` in front of one server: what a watched
/// connection sees through a TCP proxy that forwards bytes and terminates TCP on both sides, as
/// Patroni's documented HAProxy setup does (without its health checks: the server is fixed).

#include <memory>
#include <string>

#include "support/daemon_process.hpp"

namespace pgwd::testing {

class TcpProxy {
 public:
  /// Starts HAProxy in the foreground, listening on a free port of 127.0.0.1 and forwarding to
  /// `server_host:server_port`; waits (up to 30 s) until it accepts connections. Throws
  /// std::runtime_error with its output if it does not.
  TcpProxy(const std::string& server_host, int server_port);
  /// SIGKILL (DaemonProcess), then the directory is removed.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const noexcept { return port_; }

 private:
  std::string directory_;
  int port_ = 0;
  std::unique_ptr<DaemonProcess> process_;
};

}  // namespace pgwd::testing
