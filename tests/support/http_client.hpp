#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgwd::testing {

struct HttpResponse {
  int status = 0;
  /// The header lines after the status line, as received ("Name: value\r\n" each), without the
  /// blank line that ends them.
  std::string headers;
  /// The body; a chunked body is decoded, a Content-Length body is cut to that length.
  std::string body;
};

/// GET http://host:port/path with HTTP/1.0 (the server closes the connection after the
/// response), no Accept-Encoding (so no gzip). `timeout` bounds connecting, sending and reading
/// all together (resolving a host name, if `host` is not an IP address, comes on top; its
/// addresses are tried in turn). `path` starts with '/' (one is added if not). Decodes
/// `Transfer-Encoding: chunked` should the server use it anyway. Any status code is returned, not
/// thrown. Throws std::runtime_error("GET http://host:port/path: <why>") on connect failure,
/// timeout or a malformed or truncated response. Blocking; touches no global state (MSG_NOSIGNAL,
/// no SIGPIPE).
HttpResponse http_get(const std::string& host, int port, const std::string& path,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace pgwd::testing
