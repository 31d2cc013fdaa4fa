#include "support/fake_patroni.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <stdexcept>
#include <string_view>

namespace pgwd::testing {
namespace {

MHD_Result on_request(void* self, MHD_Connection* connection, const char* url, const char* method,
                      const char*, const char*, std::size_t*, void** request_state) {
  // libmicrohttpd calls once with the headers, then again to be answered.
  static int headers_seen;
  if (*request_state == nullptr) {
    *request_state = &headers_seen;
    return MHD_YES;
  }
  const FakePatroni::Answer answer = static_cast<FakePatroni*>(self)->answer(method, url);
  MHD_Response* response = MHD_create_response_from_buffer(
      answer.body.size(), const_cast<char*>(answer.body.data()), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(response, "Content-Type", "application/json");
  const MHD_Result queued = MHD_queue_response(connection, answer.status, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

FakePatroni::FakePatroni() {
  // Loopback, port 0: the kernel picks a free one, read back below.
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr,
                             nullptr, &on_request, this, MHD_OPTION_SOCK_ADDR, &address,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (daemon_ == nullptr) throw std::runtime_error("FakePatroni: MHD_start_daemon failed");
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info ? info->port : 0;
  if (port_ == 0) {
    MHD_stop_daemon(daemon_);
    throw std::runtime_error("FakePatroni: no port");
  }
}

FakePatroni::~FakePatroni() {
  MHD_stop_daemon(daemon_);
}

void FakePatroni::serve(std::string body, unsigned status) {
  const std::lock_guard lock(mutex_);
  answer_ = Answer{status, std::move(body)};
}

void FakePatroni::serve_members(const std::vector<Member>& members) {
  serve(cluster_json(members));
}

std::string FakePatroni::cluster_json(const std::vector<Member>& members) {
  std::string body = R"({"members": [)";
  for (std::size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    if (i > 0) body += ", ";
    body += R"({"name": ")" + m.name + R"(", "role": ")" + m.role + R"(", "state": ")" +
            (m.role == "leader" ? "running" : "streaming") + R"(", "api_url": "http://)" + m.host +
            R"(:8008/patroni", "host": ")" + m.host + R"(", "port": )" + std::to_string(m.port) +
            R"(, "timeline": 1})";
  }
  return body + R"(], "scope": "demo"})";
}

FakePatroni::Answer FakePatroni::answer(std::string_view method, std::string_view path) {
  if (method != "GET" || path != "/cluster") return Answer{404, "not found"};
  const std::lock_guard lock(mutex_);
  ++requests_;
  return answer_;
}

}  // namespace pgwd::testing
