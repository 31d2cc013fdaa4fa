#pragma once

/// \file
/// HTTP(S) GETs with libcurl's multi interface, driven by a pgwd::Loop: libcurl tells which
/// sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back (CURLMOPT_TIMERFUNCTION),
/// the loop's SocketWatch and Timer do the waiting, and nothing blocks the loop: name lookups
/// run on libcurl's resolver thread (Debian's libcurl is built with the threaded resolver,
/// `curl -V` says AsynchDNS), connects and TLS are non-blocking.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "daemon/patroni/answer_source.hpp"
#include "daemon/patroni/curl_handles.hpp"
#include "pgwd/loop.hpp"

namespace pgwd::daemon {

/// A body larger than this is not read to the end: the GET fails with "larger than 1 MiB".
/// A cluster of kMaxMembers members' /cluster is a few tens of KiB.
inline constexpr std::size_t kMaxAnswerBytes = 1024 * 1024;

/// Loop-bound: constructed, called and destroyed on the loop's thread. Registered with the loop
/// (its timer and socket watches point at it), so neither copied nor moved. Callbacks (`done`)
/// follow AnswerSource's contract: from the loop, never inside get(); they may destroy their
/// own PendingFetch or any other and start new GETs, never destroy the fetcher. Every
/// PendingFetch must be gone before the fetcher is destroyed.
class CurlFetcher final : public AnswerSource {
 public:
  /// Throws std::runtime_error if libcurl cannot be set up.
  CurlFetcher(Loop& loop, std::string user_agent);
  ~CurlFetcher() override;
  CurlFetcher(const CurlFetcher&) = delete;
  CurlFetcher& operator=(const CurlFetcher&) = delete;
  CurlFetcher(CurlFetcher&&) = delete;
  CurlFetcher& operator=(CurlFetcher&&) = delete;

  /// Plain http and https only, no redirect followed, TLS verified against the system's CAs.
  /// Throws std::runtime_error if libcurl cannot even start the GET (out of memory).
  std::unique_ptr<PendingFetch> get(const std::string& url, std::chrono::milliseconds timeout,
                                    Done done) override;

  /// GETs in flight (for the tests: a cancelled one is gone at once).
  std::size_t in_flight() const noexcept { return transfers_.size(); }
  /// Sockets libcurl asked to have watched right now.
  std::size_t watched_sockets() const noexcept { return watches_.size(); }

 private:
  class Transfer;

  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket_data);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  void act(curl_socket_t fd, int events);
  void deliver_finished();
  void forget(Transfer& transfer) noexcept;

  Loop& loop_;
  std::string user_agent_;
  TimerPtr timer_;
  std::unordered_map<curl_socket_t, SocketWatchPtr> watches_;
  std::unordered_map<std::uint64_t, Transfer*> transfers_;
  std::uint64_t next_id_ = 1;
  CurlMultiPtr multi_;  // last: cleaned up first, while the watches and timer still exist
};

}  // namespace pgwd::daemon
