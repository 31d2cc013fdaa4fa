#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "os/unique_fd.hpp"
#include "daemon/web_config.hpp"

namespace pgwd::daemon {

struct HttpReply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// Answers a GET, HEAD or OPTIONS for a path, percent-decoded (percent_decoded). Runs on the HTTP
/// server's threads, several at once: it must be thread-safe and must never wait on the event
/// loop.
using HttpHandler = std::function<HttpReply(std::string_view path)>;
/// Whether a (decoded) path is served without basic auth and the client-certificate check.
using OpenPath = std::function<bool(std::string_view path)>;

/// The methods every path answers; any other is 405 with this as its Allow header. OPTIONS gets
/// GET's answer (status and body) with Allow: HAProxy's `option httpchk` sends OPTIONS unless told
/// otherwise, and Patroni's REST API answers it as GET too.
inline constexpr std::string_view kAllowedMethods = "GET, HEAD, OPTIONS";

/// A request's path with every %XX (hex, either case) decoded to its byte, and nothing else
/// changed ('+' stays '+': that is a query's convention, not a path's). nullopt for a '%' not
/// followed by two hex digits, and for %00 (no path of the daemon holds a NUL, and C strings
/// would cut it): the server answers 400. libmicrohttpd's own decoding is turned off, so this is
/// the one place a path is decoded, before auth and routing see it.
std::optional<std::string> percent_decoded(std::string_view path);

/// The daemon's HTTP port, served by libmicrohttpd (Debian 12: 0.9.75, GnuTLS).
///
/// Why libmicrohttpd and not prometheus-cpp's civetweb (Debian's 1.15): civetweb gives every
/// connection a worker thread for as long as it takes to read the request, so a few clients that
/// send half a request hold every worker (the default is 2; a dropped request takes ~30 s), and
/// its TLS dlopens the unversioned `libssl.so` that only libssl-dev installs. libmicrohttpd
/// multiplexes all connections over epoll in a small thread pool, so a client that sends nothing
/// costs a file descriptor and a few KiB, not a thread; it drops idle connections after a
/// timeout, caps the number of connections, and links GnuTLS, which checks client certificates.
///
/// The server binds its own listening socket and hands it to libmicrohttpd, so that reconfigure()
/// can start a server with new TLS settings on the same socket before the old one stops
/// accepting: a certificate rotation loses no connection attempt.
class HttpServer {
 public:
  /// Seconds a connection may stay silent (a half-sent request, an idle keep-alive) before it is
  /// closed: long enough for any real client, short enough that slow clients cannot pile up.
  static constexpr unsigned kConnectionTimeoutSeconds = 10;
  /// Connections at once, beyond which new ones are refused at accept.
  static constexpr unsigned kMaxConnections = 512;
  static constexpr unsigned kThreads = 4;

  /// Binds `listen` (HOST:PORT, already checked by check_listen_address) and starts serving.
  /// Paths for which `open_path` is true skip basic auth and the client-certificate check (TLS
  /// itself still applies); a null `open_path` opens none. Throws ConfigError naming the address
  /// if it cannot be bound, or if the server cannot start with `web`.
  HttpServer(const std::string& listen, WebConfig web, OpenPath open_path, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Serves with new TLS and auth settings from now on (SIGHUP). Throws ConfigError if a server
  /// with them cannot start; the old settings keep serving then. Requests in flight on the old
  /// settings' connections are cut.
  void reconfigure(WebConfig web);

  int port() const noexcept { return port_; }
  bool tls() const;

 private:
  struct Instance;
  std::unique_ptr<Instance> start(WebConfig web);

  UniqueFd socket_;
  int port_ = 0;
  const OpenPath open_path_;
  const HttpHandler handler_;
  mutable std::mutex mutex_;  // guards current_ against a reconfigure() racing tls()
  std::unique_ptr<Instance> current_;
};

}  // namespace pgwd::daemon
