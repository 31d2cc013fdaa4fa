#include "daemon/http_server.hpp"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "daemon/basic_auth.hpp"
#include "daemon/config.hpp"

namespace pgwd::daemon {
namespace {

constexpr const char* kRealm = "pgwatchdog";

int bind_listener(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  const auto cannot = [&](const std::string& why) {
    return ConfigError("listen: cannot listen on " + listen + ": " + why);
  };
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  // Start-up only (and a --listen that never changes on reload): a blocking lookup is fine here.
  if (const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0)
    throw cannot(gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw cannot(std::strerror(errno));
  const auto fail = [&](const std::string& why) {
    ::close(fd);
    return cannot(why);
  };
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(fd, addresses->ai_addr, addresses->ai_addrlen) != 0) {
    const int error = errno;
    throw fail(std::string(std::strerror(error)) +
               (error == EADDRINUSE ? "" : " (not an address of this host?)"));
  }
  if (::listen(fd, SOMAXCONN) != 0) throw fail(std::strerror(errno));
  return fd;
}

int bound_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

std::string priorities(TlsVersion min_version) {
  return min_version == TlsVersion::tls13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                          : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

struct ResponseDeleter {
  void operator()(MHD_Response* response) const noexcept { MHD_destroy_response(response); }
};
using Response = std::unique_ptr<MHD_Response, ResponseDeleter>;

void free_body(void* body) { delete static_cast<std::string*>(body); }

// The body is handed over to libmicrohttpd, not copied (a scrape is megabytes): it frees it once
// the response is sent and released.
// Every answer is the daemon's state now: no cache (a proxy's, a browser's) may keep one.
Response make_response(HttpReply&& reply, bool with_allow = false) {
  auto body = std::make_unique<std::string>(std::move(reply.body));
  Response response(MHD_create_response_from_buffer_with_free_callback_cls(
      body->size(), body->data(), &free_body, body.get()));
  if (!response) return response;
  (void)body.release();
  MHD_add_response_header(response.get(), "Content-Type", reply.content_type.c_str());
  MHD_add_response_header(response.get(), "Cache-Control", "no-store");
  MHD_add_response_header(response.get(), "X-Content-Type-Options", "nosniff");
  if (with_allow)
    MHD_add_response_header(response.get(), "Allow", std::string(kAllowedMethods).c_str());
  return response;
}

MHD_Result send(MHD_Connection* connection, HttpReply&& reply, bool with_allow = false) {
  const unsigned status = reply.status;
  const Response response = make_response(std::move(reply), with_allow);
  if (!response) return MHD_NO;
  return MHD_queue_response(connection, status, response.get());
}

// libmicrohttpd's unescape callback: leaves the path as sent (percent_decoded decodes it).
size_t keep_escaped(void*, MHD_Connection*, char* text) { return std::strlen(text); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether the client presented a certificate that the CA of client_ca_file signed (and that is
// in its validity period). GnuTLS asked for it in the handshake but did not judge it.
enum class ClientCertificate { absent, invalid, verified };

ClientCertificate client_certificate(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!info || !info->tls_session) return ClientCertificate::absent;
  auto* session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned count = 0;
  if (!gnutls_certificate_get_peers(session, &count) || count == 0)
    return ClientCertificate::absent;
  unsigned status = 0;
  if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0)
    return ClientCertificate::invalid;
  return ClientCertificate::verified;
}

}  // namespace

std::optional<std::string> percent_decoded(std::string_view path) {
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      decoded += path[i];
      continue;
    }
    if (i + 2 >= path.size()) return std::nullopt;
    const int high = hex_value(path[i + 1]);
    const int low = hex_value(path[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0)) return std::nullopt;
    decoded += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return decoded;
}

// Outside the anonymous namespace: HttpServer::Instance, a member of a class declared in the
// header, holds one, and GCC rejects a member of internal linkage there when this file is part of
// a unity build (-Wsubobject-linkage).
struct MhdDaemonDeleter {
  void operator()(MHD_Daemon* daemon) const noexcept {
    // The listening socket is ours and may serve the next instance: stop accepting first, so
    // that stopping does not close it.
    MHD_quiesce_daemon(daemon);
    MHD_stop_daemon(daemon);
  }
};

struct HttpServer::Instance {
  HttpServer* server = nullptr;
  WebConfig web;
  std::string tls_priorities;
  BasicAuth auth;
  std::unique_ptr<MHD_Daemon, MhdDaemonDeleter> daemon;

  Instance(HttpServer* owner, WebConfig config)
      : server(owner), web(std::move(config)), auth(web.basic_auth_users) {}

  static MHD_Result answer(void* self, MHD_Connection* connection, const char* url,
                           const char* method, const char*, const char*,
                           size_t* upload_size, void** request_state) {
    // The first call only announces the request: answering in it makes libmicrohttpd close the
    // connection afterwards (it cannot know yet whether a body follows), and Prometheus reuses
    // its connections. Any body is read and dropped until the last call.
    static int announced;
    if (*request_state == nullptr) {
      *request_state = &announced;
      return MHD_YES;
    }
    if (*upload_size != 0) {
      *upload_size = 0;
      return MHD_YES;
    }
    try {
      return static_cast<Instance*>(self)->answer(connection, url, method);
    } catch (const std::exception&) {
      return send(connection, {500, "text/plain; charset=utf-8", "internal error\n"});
    }
  }

  MHD_Result answer(MHD_Connection* connection, std::string_view raw_path,
                    std::string_view method) {
    const bool options = method == "OPTIONS";
    if (method != "GET" && method != "HEAD" && !options)
      return send(connection,
                  {405, "text/plain; charset=utf-8",
                   "method not allowed: only " + std::string(kAllowedMethods) + "\n"},
                  true);
    const std::optional<std::string> decoded = percent_decoded(raw_path);
    if (!decoded)
      return send(connection, {400, "text/plain; charset=utf-8",
                               "bad request: a '%' in the path not followed by two hex digits, "
                               "or %00\n"});
    const std::string_view path = *decoded;
    const bool protected_path = !server->open_path_ || !server->open_path_(path);
    if (protected_path && web.tls && web.tls->client_auth != ClientAuth::none) {
      const ClientCertificate certificate = client_certificate(connection);
      if (certificate == ClientCertificate::invalid ||
          (certificate == ClientCertificate::absent &&
           web.tls->client_auth == ClientAuth::require_and_verify))
        return send(connection,
                    {403, "text/plain; charset=utf-8",
                     certificate == ClientCertificate::absent
                         ? "a client certificate is required\n"
                         : "the client certificate is not signed by a trusted CA\n"});
    }
    if (protected_path && auth.enabled() && !authenticated(connection)) {
      const Response response = make_response({401, "text/plain; charset=utf-8", "unauthorized\n"});
      if (!response) return MHD_NO;
      return MHD_queue_basic_auth_fail_response(connection, kRealm, response.get());
    }
    return send(connection, server->handler_(path), options);
  }

  bool authenticated(MHD_Connection* connection) {
    char* password = nullptr;
    char* user = MHD_basic_auth_get_username_password(connection, &password);
    const bool ok = user && password && auth.verify(user, password);
    if (password) {
      // Do not leave the password lying in freed memory.
      volatile char* wipe = password;
      while (*wipe) *wipe++ = '\0';
      MHD_free(password);
    }
    if (user) MHD_free(user);
    return ok;
  }
};

HttpServer::HttpServer(const std::string& listen, WebConfig web, OpenPath open_path,
                       HttpHandler handler)
    : socket_(bind_listener(listen)),
      port_(bound_port(socket_.get())),
      open_path_(std::move(open_path)),
      handler_(std::move(handler)),
      current_(start(std::move(web))) {}

HttpServer::~HttpServer() = default;

std::unique_ptr<HttpServer::Instance> HttpServer::start(WebConfig web) {
  auto instance = std::make_unique<Instance>(this, std::move(web));
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC;
  std::vector<MHD_OptionItem> options = {
      {MHD_OPTION_LISTEN_SOCKET, socket_.get(), nullptr},
      {MHD_OPTION_THREAD_POOL_SIZE, kThreads, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutSeconds, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, nullptr},
      {MHD_OPTION_UNESCAPE_CALLBACK, reinterpret_cast<intptr_t>(&keep_escaped), nullptr},
  };
  if (const auto& tls = instance->web.tls) {
    flags |= MHD_USE_TLS;
    instance->tls_priorities = priorities(tls->min_version);
    options.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(tls->cert_pem.c_str())});
    options.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(tls->key_pem.c_str())});
    options.push_back(
        {MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>(instance->tls_priorities.c_str())});
    // With a trust list, GnuTLS asks the client for a certificate (and only then).
    if (tls->client_auth != ClientAuth::none)
      options.push_back(
          {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(tls->client_ca_pem.c_str())});
  }
  options.push_back({MHD_OPTION_END, 0, nullptr});
  instance->daemon.reset(MHD_start_daemon(flags, 0, nullptr, nullptr, &Instance::answer,
                                          instance.get(), MHD_OPTION_ARRAY, options.data(),
                                          MHD_OPTION_END));
  if (!instance->daemon)
    throw ConfigError(std::string("the HTTP server did not start") +
                      (instance->web.tls ? " with this TLS configuration" : ""));
  return instance;
}

void HttpServer::reconfigure(WebConfig web) {
  // The new instance accepts on the shared socket before the old one stops: no gap.
  std::unique_ptr<Instance> next = start(std::move(web));
  std::unique_ptr<Instance> previous;
  {
    const std::lock_guard lock(mutex_);
    previous = std::exchange(current_, std::move(next));
  }
}

bool HttpServer::tls() const {
  const std::lock_guard lock(mutex_);
  return current_->web.tls.has_value();
}

}  // namespace pgwd::daemon
