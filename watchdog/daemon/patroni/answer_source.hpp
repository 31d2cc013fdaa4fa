#pragma once

/// \file
/// Where a cluster's /cluster answer comes from: libcurl in the daemon (curl_fetcher.hpp), a
/// scripted source in the unit tests. ClusterWatch sees only this.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace pgwd::daemon {

/// One GET's outcome. `error` empty: the server answered with `status` and `body`.
struct FetchResult {
  std::string error;  ///< "connection refused", "timed out after 2000 ms", ...: no answer
  long status = 0;    ///< the HTTP status when there was an answer
  std::string body;
};

/// A GET in flight. Destroying it cancels it: its callback then never runs.
class PendingFetch {
 public:
  virtual ~PendingFetch() = default;
};

class AnswerSource {
 public:
  using Done = std::function<void(FetchResult)>;
  virtual ~AnswerSource() = default;
  /// GETs `url` within `timeout`. `done` runs once, on the loop, never inside get(). Inside
  /// `done` the caller may destroy the PendingFetch it belongs to (it is finished), destroy any
  /// other, and start new ones; it must not destroy the source. The source must outlive every
  /// PendingFetch it hands out.
  virtual std::unique_ptr<PendingFetch> get(const std::string& url,
                                            std::chrono::milliseconds timeout, Done done) = 0;
};

}  // namespace pgwd::daemon
