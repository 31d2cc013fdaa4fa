#include "daemon/patroni/curl_fetcher.hpp"

#include <fmt/format.h>

#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pgwd::daemon {
namespace {

void init_curl_once() {
  // curl_global_init is not to run concurrently with other libcurl calls in older builds; once
  // per process, before the first handle, is what libcurl asks.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl: curl_global_init failed");
  });
}

template <class Value>
void set(CURL* easy, CURLoption option, Value value) {
  if (curl_easy_setopt(easy, option, value) != CURLE_OK)
    throw std::runtime_error(
        fmt::format("libcurl: cannot set option {}", static_cast<int>(option)));
}

}  // namespace

/// One GET: its easy handle and what came so far. Registered with the multi handle from get()
/// until it finishes or is destroyed.
class CurlFetcher::Transfer final : public PendingFetch {
 public:
  Transfer(CurlFetcher& fetcher, std::uint64_t id, Done done)
      : fetcher_(fetcher), id_(id), easy_(curl_easy_init()), done_(std::move(done)) {
    if (!easy_) throw std::runtime_error("libcurl: curl_easy_init failed");
    error_[0] = '\0';
  }
  ~Transfer() override { fetcher_.forget(*this); }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  static std::size_t on_data(char* data, std::size_t size, std::size_t count, void* self) {
    auto& transfer = *static_cast<Transfer*>(self);
    const std::size_t bytes = size * count;
    if (transfer.body_.size() + bytes > kMaxAnswerBytes) {
      transfer.too_large_ = true;
      return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
    }
    transfer.body_.append(data, bytes);
    return bytes;
  }

  FetchResult result(CURLcode code, std::chrono::milliseconds timeout) {
    FetchResult r;
    if (too_large_) {
      r.error = fmt::format("the answer is larger than {} MiB", kMaxAnswerBytes / (1024 * 1024));
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      r.error = fmt::format("no answer within {} ms", timeout.count());
    } else if (code != CURLE_OK) {
      // The error buffer says more than curl_easy_strerror ("Failed to connect to 127.0.0.1
      // port 1 after 0 ms: Connection refused"). URLs with credentials are refused by the
      // config, so nothing secret can be in it.
      r.error = error_[0] != '\0' ? std::string(error_) : curl_easy_strerror(code);
    } else {
      curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &r.status);
      r.body = std::move(body_);
    }
    return r;
  }

  CurlFetcher& fetcher_;
  const std::uint64_t id_;
  CurlEasyPtr easy_;
  Done done_;
  std::chrono::milliseconds timeout_{};
  bool in_multi_ = false;
  bool too_large_ = false;
  std::string body_;
  char error_[CURL_ERROR_SIZE];
};

CurlFetcher::CurlFetcher(Loop& loop, std::string user_agent)
    : loop_(loop), user_agent_(std::move(user_agent)) {
  init_curl_once();
  multi_.reset(curl_multi_init());
  if (!multi_) throw std::runtime_error("libcurl: curl_multi_init failed");
  // The timer runs libcurl's timeouts and its first step of every new GET: from the loop, never
  // inside the call that armed it, which is what CURLMOPT_TIMERFUNCTION requires.
  timer_ = loop_.make_timer([this] { act(CURL_SOCKET_TIMEOUT, 0); });
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &CurlFetcher::on_socket);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &CurlFetcher::on_timer);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
}

CurlFetcher::~CurlFetcher() {
  // Every Transfer is gone (the contract), so the multi handle holds no easy handle; whatever
  // curl_multi_cleanup still reports must not reach the loop objects being destroyed.
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, nullptr);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, nullptr);
}

std::unique_ptr<PendingFetch> CurlFetcher::get(const std::string& url,
                                               std::chrono::milliseconds timeout, Done done) {
  auto transfer = std::make_unique<Transfer>(*this, next_id_++, std::move(done));
  CURL* easy = transfer->easy_.get();
  set(easy, CURLOPT_URL, url.c_str());
  set(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  set(easy, CURLOPT_FOLLOWLOCATION, 0L);
  // No signals: the daemon's own handlers stay in charge, and libcurl's threaded resolver needs
  // no SIGALRM.
  set(easy, CURLOPT_NOSIGNAL, 1L);
  set(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  set(easy, CURLOPT_USERAGENT, user_agent_.c_str());
  set(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_data);
  set(easy, CURLOPT_WRITEDATA, transfer.get());
  set(easy, CURLOPT_ERRORBUFFER, transfer->error_);
  set(easy, CURLOPT_PRIVATE, transfer.get());
  transfer->timeout_ = timeout;
  if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK)
    throw std::runtime_error("libcurl: curl_multi_add_handle failed");
  transfer->in_multi_ = true;
  transfers_.emplace(transfer->id_, transfer.get());
  return transfer;
}

int CurlFetcher::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto& fetcher = *static_cast<CurlFetcher*>(self);
  if (what == CURL_POLL_REMOVE) {
    // Possibly from inside this very watch's callback (act() below): the loop allows a watch
    // to be destroyed there.
    fetcher.watches_.erase(fd);
    return 0;
  }
  // No exception may cross libcurl's C frames: -1 makes libcurl fail the transfers instead.
  try {
    auto [place, inserted] = fetcher.watches_.try_emplace(fd);
    if (inserted)
      place->second = fetcher.loop_.make_socket_watch([&fetcher, fd](Readiness ready) {
        // Nothing of this closure is read after act(): act() may destroy it.
        fetcher.act(
            fd, (ready.readable ? CURL_CSELECT_IN : 0) | (ready.writable ? CURL_CSELECT_OUT : 0));
      });
    const Interest interest = what == CURL_POLL_IN    ? Interest::read
                              : what == CURL_POLL_OUT ? Interest::write
                                                      : Interest::read_write;
    place->second->watch(fd, interest);
    return 0;
  } catch (const std::exception&) {
    fetcher.watches_.erase(fd);
    return -1;
  }
}

int CurlFetcher::on_timer(CURLM*, long timeout_ms, void* self) {
  auto& fetcher = *static_cast<CurlFetcher*>(self);
  try {
    if (timeout_ms < 0)
      fetcher.timer_->disarm();
    else
      fetcher.timer_->arm(std::chrono::milliseconds(timeout_ms));
    return 0;
  } catch (const std::exception&) {
    return -1;
  }
}

void CurlFetcher::act(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_.get(), fd, events, &running);
  deliver_finished();
}

void CurlFetcher::deliver_finished() {
  // Read every message first, then call back: a callback may destroy other transfers (whose
  // message would then name a freed handle) or start new ones.
  std::vector<std::pair<std::uint64_t, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_.get(), &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    char* owner = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
    finished.emplace_back(reinterpret_cast<Transfer*>(owner)->id_, message->data.result);
  }
  for (const auto& [id, code] : finished) {
    const auto found = transfers_.find(id);
    if (found == transfers_.end()) continue;  // destroyed by an earlier callback of this batch
    Transfer& transfer = *found->second;
    curl_multi_remove_handle(multi_.get(), transfer.easy_.get());
    transfer.in_multi_ = false;
    transfers_.erase(found);
    FetchResult result = transfer.result(code, transfer.timeout_);
    Done done = std::move(transfer.done_);
    done(std::move(result));  // may destroy `transfer`: nothing of it is used after this
  }
}

void CurlFetcher::forget(Transfer& transfer) noexcept {
  transfers_.erase(transfer.id_);
  if (transfer.in_multi_) {
    // Never inside a libcurl callback: transfers are destroyed by their owners, from the loop.
    curl_multi_remove_handle(multi_.get(), transfer.easy_.get());
    transfer.in_multi_ = false;
  }
}

}  // namespace pgwd::daemon
