#include "daemon/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>

namespace pgwd::daemon {
namespace {

// %j: the message as the inside of a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& out) override {
    for (const char c : msg.payload) {
      switch (c) {
        case '"':
          out.append(std::string_view("\\\""));
          break;
        case '\\':
          out.append(std::string_view("\\\\"));
          break;
        case '\n':
          out.append(std::string_view("\\n"));
          break;
        case '\r':
          out.append(std::string_view("\\r"));
          break;
        case '\t':
          out.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out.append(std::string_view(escaped));
          } else {
            out.push_back(c);
          }
      }
    }
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

}  // namespace pgwd::daemon
