#include "daemon/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <future>
#include <string>
#include <thread>

#include "text/json.hpp"

namespace pgwd::daemon {
namespace {

// %j: the message as the inside of a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& out) override {
    std::string escaped;
    escaped.reserve(msg.payload.size() + 16);
    append_json_escaped(escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    out.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void configure_logger(spdlog::logger& logger, LogFormat format, LogLevel level) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == LogFormat::json)
    formatter->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l","msg":"%j"})");
  else
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger.set_formatter(std::move(formatter));
  logger.set_level(to_spdlog(level));
  logger.flush_on(spdlog::level::trace);  // a log line is visible at once, also when piped
}

std::shared_ptr<spdlog::logger> make_logger(LogFormat format, LogLevel level) {
  auto logger = std::make_shared<spdlog::logger>("pgwatchdog",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  configure_logger(*logger, format, level);
  return logger;
}

DaemonLog::DaemonLog(LogFormat format, LogLevel level)
    : pool_(std::make_shared<spdlog::details::thread_pool>(kLogQueueLines, 1)),
      logger_(std::make_shared<spdlog::async_logger>(
          "pgwatchdog", std::make_shared<spdlog::sinks::stderr_sink_mt>(), pool_,
          spdlog::async_overflow_policy::overrun_oldest)),
      format_(format) {
  configure_logger(*logger_, format, level);
}

DaemonLog::~DaemonLog() = default;

void DaemonLog::configure(LogFormat format, LogLevel level) {
  if (format == format_) {
    logger_->set_level(to_spdlog(level));
    return;
  }
  format_ = format;
  configure_logger(*logger_, format, level);
}

std::uint64_t DaemonLog::dropped() const {
  return pool_ ? pool_->overrun_counter() : 0;
}

bool DaemonLog::drain(std::chrono::milliseconds timeout) {
  if (!pool_) return true;
  // The pool's destructor queues a stop behind every line and joins the writer once it has
  // written them: done on a thread of its own, so that a blocked stderr only costs `timeout`.
  std::promise<void> drained;
  std::future<void> done = drained.get_future();
  std::thread([pool = std::move(pool_), drained = std::move(drained)]() mutable {
    pool.reset();
    drained.set_value();
  }).detach();
  return done.wait_for(timeout) == std::future_status::ready;
}

}  // namespace pgwd::daemon
