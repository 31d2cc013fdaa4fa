#include "support/http_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <system_error>

#include "support/poll_deadline.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A scrape is a few KB to a few MB; anything this big is a runaway server.
constexpr std::size_t kMaxResponseBytes = 256u << 20;
constexpr std::uint64_t kMaxChunkSize = std::uint64_t{1} << 40;
constexpr std::string_view kCrlf = "\r\n";

/// Why a request failed, without the "GET url: " prefix that http_get adds.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail_errno(std::string_view what, int error) {
  throw Failure(std::string(what) + ": " + std::generic_category().message(error));
}

/// poll() one descriptor until `events` or the deadline. Returns false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) fail_errno("poll", errno);
  }
}

std::string host_for_url(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

std::optional<std::string> find_header(std::string_view headers, std::string_view name) {
  while (!headers.empty()) {
    const std::size_t end = headers.find('\n');
    const std::string_view line = headers.substr(0, end);
    headers = end == std::string_view::npos ? std::string_view{} : headers.substr(end + 1);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (iequals(trim(line.substr(0, colon)), name))
      return std::string(trim(line.substr(colon + 1)));
  }
  return std::nullopt;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* list) const noexcept { ::freeaddrinfo(list); }
};

/// Connects `fd` (built in place: UniqueFd is neither copyable nor movable) to the first address
/// of `host` that accepts.
void connect_to(const std::string& host, int port, Clock::time_point deadline,
                std::optional<UniqueFd>& fd) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &raw); rc != 0)
    throw Failure("cannot resolve " + host + ": " + ::gai_strerror(rc));
  const std::unique_ptr<addrinfo, AddrInfoDeleter> list(raw);

  std::string last_error = "no addresses";
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    fd.emplace(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd->get() < 0) {
      last_error = std::string("socket: ") + std::generic_category().message(errno);
      continue;
    }
    if (::connect(fd->get(), ai->ai_addr, ai->ai_addrlen) == 0) return;
    // EINTR on a non-blocking socket: the connection goes on in the background, as with
    // EINPROGRESS (calling connect again would only say EALREADY).
    if (errno != EINPROGRESS && errno != EINTR) {
      last_error = "connect: " + std::generic_category().message(errno);
      continue;
    }
    if (!wait_for(fd->get(), POLLOUT, deadline)) throw Failure("timed out connecting");
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error == 0) return;
    last_error = "connect: " + std::generic_category().message(error);
  }
  fd.reset();
  throw Failure(last_error);
}

void send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd, POLLOUT, deadline)) throw Failure("timed out sending the request");
    } else if (n < 0 && errno != EINTR) {
      fail_errno("send", errno);
    }
  }
}

bool parse_hex(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

/// Decodes a chunked body starting at data[pos]. nullopt: more data needed.
std::optional<std::string> decode_chunked(std::string_view data, std::size_t pos, bool eof) {
  std::string body;
  for (;;) {
    const std::size_t line_end = data.find(kCrlf, pos);
    if (line_end == std::string_view::npos) return std::nullopt;
    std::string_view size_text = data.substr(pos, line_end - pos);
    size_text = trim(size_text.substr(0, size_text.find(';')));  // drop chunk extensions
    std::uint64_t size = 0;
    if (!parse_hex(size_text, size) || size > kMaxChunkSize)
      throw Failure("malformed chunk size line '" + std::string(data.substr(pos, line_end - pos)) +
                    "'");
    pos = line_end + kCrlf.size();
    if (size == 0) {
      // Optional trailer fields, then an empty line.
      for (;;) {
        const std::size_t end = data.find(kCrlf, pos);
        if (end == std::string_view::npos) {
          // A server that closes right after the last chunk has said everything that matters.
          if (eof) return body;
          return std::nullopt;
        }
        if (end == pos) return body;
        pos = end + kCrlf.size();
      }
    }
    const std::size_t chunk = static_cast<std::size_t>(size);
    if (data.size() - pos < chunk + kCrlf.size()) return std::nullopt;
    body.append(data.substr(pos, chunk));
    pos += chunk;
    if (data.substr(pos, kCrlf.size()) != kCrlf) throw Failure("chunk not followed by CRLF");
    pos += kCrlf.size();
  }
}

/// A response's status line and headers, and where its body begins.
struct Head {
  HttpResponse response;  // status and headers; no body yet
  std::size_t body_begin = 0;
};

/// The status line and headers, if they are all in `data`. nullopt: not yet (only when !eof).
/// Throws Failure if they are malformed, or incomplete at eof.
std::optional<Head> parse_head(std::string_view data, bool eof) {
  const std::size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string_view::npos) {
    if (!eof) return std::nullopt;
    if (data.empty()) throw Failure("connection closed without a response");
    throw Failure("connection closed in the middle of the headers (got " +
                  std::to_string(data.size()) + " bytes)");
  }

  const std::size_t status_end = data.find(kCrlf);
  const std::string_view status_line = data.substr(0, status_end);
  // "HTTP/1.x NNN reason"
  const std::size_t space = status_line.find(' ');
  int status = 0;
  if (!status_line.starts_with("HTTP/") || space == std::string_view::npos ||
      status_line.size() < space + 4)
    throw Failure("malformed status line '" + std::string(status_line) + "'");
  const std::string_view code = status_line.substr(space + 1, 3);
  const auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), status);
  if (ec != std::errc() || end != code.data() + code.size() || status < 100 || status > 999 ||
      (status_line.size() > space + 4 && status_line[space + 4] != ' '))
    throw Failure("malformed status line '" + std::string(status_line) + "'");

  Head head;
  head.response.status = status;
  const std::size_t headers_begin = status_end + kCrlf.size();
  head.body_begin = header_end + 2 * kCrlf.size();
  // The first CRLF is at or before the blank line, so headers_begin <= header_end + 2: the
  // header lines keep their own CRLFs, the blank line is left out.
  head.response.headers =
      std::string(data.substr(headers_begin, header_end + kCrlf.size() - headers_begin));
  return head;
}

bool is_chunked(const std::string& headers) {
  const auto transfer_encoding = find_header(headers, "Transfer-Encoding");
  if (!transfer_encoding || iequals(*transfer_encoding, "identity")) return false;
  std::string_view codings = *transfer_encoding;
  const std::size_t comma = codings.rfind(',');
  if (!iequals(trim(comma == std::string_view::npos ? codings : codings.substr(comma + 1)),
               "chunked"))
    throw Failure("unsupported Transfer-Encoding '" + *transfer_encoding + "'");
  return true;
}

/// The Content-Length, if the headers give one. Throws Failure if it is malformed.
std::optional<std::uint64_t> content_length(const std::string& headers) {
  const auto length_text = find_header(headers, "Content-Length");
  if (!length_text) return std::nullopt;
  std::uint64_t length = 0;
  const auto [end, ec] =
      std::from_chars(length_text->data(), length_text->data() + length_text->size(), length, 10);
  if (length_text->empty() || ec != std::errc() || end != length_text->data() + length_text->size())
    throw Failure("malformed Content-Length '" + *length_text + "'");
  return length;
}

[[noreturn]] void fail_truncated(std::size_t got, std::uint64_t length) {
  throw Failure("connection closed after " + std::to_string(got) + " of " + std::to_string(length) +
                " body bytes");
}

/// Parses what was received so far. nullopt: incomplete (only when !eof). Throws Failure if it is
/// malformed, or incomplete at eof.
std::optional<HttpResponse> parse_response(std::string_view data, bool eof) {
  std::optional<Head> head = parse_head(data, eof);
  if (!head) return std::nullopt;
  HttpResponse& response = head->response;
  const std::string_view rest = data.substr(head->body_begin);
  if (is_chunked(response.headers)) {
    std::optional<std::string> body = decode_chunked(data, head->body_begin, eof);
    if (!body) {
      if (eof) throw Failure("connection closed in the middle of the chunked body");
      return std::nullopt;
    }
    response.body = std::move(*body);
    return std::move(response);
  }

  if (const auto length = content_length(response.headers)) {
    if (rest.size() >= *length) {
      response.body = std::string(rest.substr(0, static_cast<std::size_t>(*length)));
      return std::move(response);
    }
    if (!eof) return std::nullopt;
    fail_truncated(rest.size(), *length);
  }

  if (!eof) return std::nullopt;  // the body ends where the connection does
  response.body = std::string(rest);
  return std::move(response);
}

/// recv() into `into`, waiting (poll) only when nothing is there yet: 0 at the end of the
/// stream; -1 with errno set on an error. Throws Failure at the deadline (`got` bytes so far).
ssize_t receive(int fd, std::span<char> into, Clock::time_point deadline,
                std::chrono::milliseconds timeout, std::size_t got) {
  for (;;) {
    const ssize_t n = ::recv(fd, into.data(), into.size(), 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return n;
    if (!wait_for(fd, POLLIN, deadline))
      throw Failure("timed out after " + std::to_string(timeout.count()) +
                    " ms waiting for the response (got " + std::to_string(got) + " bytes)");
  }
}

/// The rest of a body of `length` bytes, received straight into the response (a scrape is
/// megabytes: growing a buffer and copying the body out of it cost the client more CPU than
/// the server spent writing it). `head` is what came before, `data` all that came with it,
/// which may already hold the whole body and more.
HttpResponse read_sized_body(int fd, Head head, std::uint64_t length, std::string_view data,
                             Clock::time_point deadline, std::chrono::milliseconds timeout) {
  HttpResponse response = std::move(head.response);
  std::string& body = response.body;
  body.reserve(static_cast<std::size_t>(length));
  // What came with the headers, up to the body's length.
  body.assign(data.substr(head.body_begin, static_cast<std::size_t>(length)));
  std::size_t got = body.size();
  body.resize(static_cast<std::size_t>(length));
  while (got < body.size()) {
    const ssize_t n =
        receive(fd, std::span(body).subspan(got), deadline, timeout, head.body_begin + got);
    if (n == 0) fail_truncated(got, length);
    if (n < 0) fail_errno("recv", errno);
    got += static_cast<std::size_t>(n);
  }
  return response;
}

HttpResponse get(const std::string& host, int port, const std::string& target,
                 std::chrono::milliseconds timeout) {
  const Clock::time_point deadline =
      Clock::now() + std::max(timeout, std::chrono::milliseconds::zero());
  std::optional<UniqueFd> connection;
  connect_to(host, port, deadline, connection);
  const int fd = connection->get();

  const std::string request = "GET " + target + " HTTP/1.0\r\nHost: " + host_for_url(host) + ":" +
                              std::to_string(port) +
                              "\r\nUser-Agent: pgwatchdog-tests\r\nConnection: close\r\n\r\n";
  send_all(fd, request, deadline);

  std::string data;
  std::array<char, 16384> buffer{};
  for (;;) {
    const ssize_t n = receive(fd, buffer, deadline, timeout, data.size());
    if (n < 0) {
      // A reset after a complete response is no loss.
      const int error = errno;
      if (auto response = parse_response(data, false)) return std::move(*response);
      fail_errno("recv", error);
    }
    if (n == 0) return *parse_response(data, true);
    data.append(buffer.data(), static_cast<std::size_t>(n));
    if (data.size() > kMaxResponseBytes)
      throw Failure("response larger than " + std::to_string(kMaxResponseBytes) + " bytes");
    std::optional<Head> head = parse_head(data, false);
    if (!head) continue;
    // A body whose length the headers give is read into place from here on (or cut from what
    // came, if all of it did).
    if (!is_chunked(head->response.headers))
      if (const auto length = content_length(head->response.headers)) {
        if (*length > kMaxResponseBytes - head->body_begin)
          throw Failure("response larger than " + std::to_string(kMaxResponseBytes) + " bytes");
        return read_sized_body(fd, std::move(*head), *length, data, deadline, timeout);
      }
    // Stop as soon as the response is complete, even if the server keeps the connection open.
    if (auto response = parse_response(data, false)) return std::move(*response);
  }
}

}  // namespace

HttpResponse http_get(const std::string& host, int port, const std::string& path,
                      std::chrono::milliseconds timeout) {
  const std::string target = path.starts_with('/') ? path : "/" + path;
  try {
    return get(host, port, target, timeout);
  } catch (const Failure& failure) {
    throw std::runtime_error("GET http://" + host_for_url(host) + ":" + std::to_string(port) +
                             target + ": " + failure.what());
  }
}

}  // namespace pgwd::testing
