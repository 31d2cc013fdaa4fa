#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "daemon/config.hpp"

namespace pgwd::daemon {

/// The daemon's logger on stderr: `text` for people, `json` for log shippers (one object per line,
/// the message escaped: spdlog's `%v` is not). Passwords never reach it: the library only logs
/// redacted conninfo and scrubbed server messages.
std::shared_ptr<spdlog::logger> make_logger(LogFormat format, LogLevel level);
/// Applies a reloaded log level and format to a logger made by make_logger.
void configure_logger(spdlog::logger& logger, LogFormat format, LogLevel level);

}  // namespace pgwd::daemon
