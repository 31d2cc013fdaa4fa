#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct MHD_Daemon;

namespace pgwd::testing {

/// A Patroni REST API as far as pgwatchdog reads it: GET /cluster answers what the test last
/// gave serve() (any other path is 404), over plain HTTP on 127.0.0.1 and a free port, from a
/// libmicrohttpd thread of its own. The database behind the members it lists is the test's
/// business (real clusters from test_cluster.hpp).
class FakePatroni {
 public:
  struct Member {
    std::string name;
    std::string host;
    int port = 0;
    std::string role = "replica";
  };

  FakePatroni();
  ~FakePatroni();
  FakePatroni(const FakePatroni&) = delete;
  FakePatroni& operator=(const FakePatroni&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// What GET /cluster answers from now on (the next request sees it).
  void serve(std::string body, unsigned status = 200);
  /// serve() with Patroni 3's shape of answer for these members.
  void serve_members(const std::vector<Member>& members);
  /// GET /cluster requests answered so far.
  int requests() const noexcept { return requests_.load(); }

  static std::string cluster_json(const std::vector<Member>& members);

  struct Answer {
    unsigned status;
    std::string body;
  };
  /// What a request gets (called on libmicrohttpd's thread).
  Answer answer(std::string_view method, std::string_view path);

 private:
  std::mutex mutex_;
  Answer answer_{503, R"({"error":"nothing served yet"})"};
  std::atomic<int> requests_{0};
  int port_ = 0;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace pgwd::testing
